package cuda

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadWrongLibrary exercises dlopen and symbol binding without a GPU: a
// folder named in ARMOR_CUDA_LIBS holds "libcuda.so.1" that is really libc,
// so loading succeeds and binding fails naming the missing symbol.
func TestLoadWrongLibrary(t *testing.T) {
	if !dlSupported {
		t.Skip("no dlopen on this platform")
	}
	var libc string
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			libc = p
			break
		}
	}
	if libc == "" {
		t.Skip("libc.so.6 not found")
	}
	dir := t.TempDir()
	if err := os.Symlink(libc, filepath.Join(dir, "libcuda.so.1")); err != nil {
		t.Fatal(err)
	}
	_, err := loadLibsOnce(Search{Root: t.TempDir(), Getenv: env(map[string]string{"ARMOR_CUDA_LIBS": dir})})
	if err == nil || !strings.Contains(err.Error(), "lacks symbol cuInit") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v", err)
	}
	// A file that is not a library fails at dlopen, naming the path.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "libcuda.so.1"), []byte("not an ELF file"), 0o644)
	_, err = loadLibsOnce(Search{Root: t.TempDir(), Getenv: env(map[string]string{"ARMOR_CUDA_LIBS": bad})})
	if err == nil || !strings.Contains(err.Error(), "dlopen "+filepath.Join(bad, "libcuda.so.1")) {
		t.Fatalf("err = %v", err)
	}
	// Nothing there: the not-found message.
	_, err = loadLibsOnce(Search{Root: t.TempDir(), Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "CUDA driver not found") {
		t.Fatalf("err = %v", err)
	}
}
