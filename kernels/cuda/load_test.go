package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/kernels/cuda/cudatest"
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

// depRuns numbers the runs of TestLoadFindsDependency in this process.
var depRuns int

// TestLoadFindsDependency: a library whose dependency sits in a folder the
// dynamic loader does not search (as with pip's per-library folders) is
// loaded after the dependency is found in our search places.
func TestLoadFindsDependency(t *testing.T) {
	if !dlSupported {
		t.Skip("no dlopen on this platform")
	}
	a, b := t.TempDir(), t.TempDir()
	write := func(path, src string) {
		os.WriteFile(path+".c", []byte(src), 0o644)
	}
	// A fresh soname per run: a library once loaded stays loaded, and a
	// second run in the same process (go test -count) would find it.
	depRuns++
	dep := fmt.Sprintf("libarmordep%d.so.3", depRuns)
	write(filepath.Join(b, "dep"), "int dep_value(void) { return 42; }\n")
	cudatest.SharedLib(t, filepath.Join(b, dep), "-Wl,-soname,"+dep, filepath.Join(b, "dep.c"))
	write(filepath.Join(a, "top"), "int dep_value(void); int top_value(void) { return dep_value() + 1; }\n")
	cudatest.SharedLib(t, filepath.Join(a, "libarmortop.so"), filepath.Join(a, "top.c"), filepath.Join(b, dep))
	top := filepath.Join(a, "libarmortop.so")
	// Without b in the search places the error names the dependency and
	// where it was looked for.
	_, err := dlopenDeps(top, Search{Root: t.TempDir(), Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), dep+" (needed by libarmortop.so) not found") {
		t.Fatalf("err = %v", err)
	}
	h, err := dlopenDeps(top, Search{Root: t.TempDir(), Getenv: env(map[string]string{"ARMOR_CUDA_LIBS": b})})
	if err != nil {
		t.Fatal(err)
	}
	var topValue func() int32
	if err := bind(h, top, []sym{{"top_value", &topValue, false}}); err != nil {
		t.Fatal(err)
	}
	if v := topValue(); v != 43 {
		t.Fatalf("top_value() = %d", v)
	}
}
