// Package cudatest builds the CPU stand-in CUDA libraries
// (../testdata/fakecuda.c) for tests of the CUDA backend on machines without
// a GPU. It is imported only by tests.
package cudatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// FakeLibs compiles the stand-in with gcc (SharedLib) into a temporary folder under the
// library names the backend looks for (libcuda.so.1, libcublas.so.12,
// libcublasLt.so.12, libcusparseLt.so.0) and returns that folder, to be
// named by ARMOR_CUDA_LIBS. It skips the test where gcc is missing.
func FakeLibs(t testing.TB) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cudatest: cannot locate its own source")
	}
	src := filepath.Join(filepath.Dir(self), "..", "testdata", "fakecuda.c")
	dir := t.TempDir()
	so := filepath.Join(dir, "libfake.so")
	SharedLib(t, so, "-O1", src, "-lm")
	for _, n := range []string{"libcuda.so.1", "libcublas.so.12", "libcublasLt.so.12", "libcusparseLt.so.0"} {
		if err := os.Symlink(so, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// SharedLib compiles a shared library to out with gcc -shared -fPIC and the
// further arguments (sources, flags, libraries). It skips the test where
// gcc is missing: the one place tests build native libraries.
func SharedLib(t testing.TB, out string, args ...string) {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the native test libraries")
	}
	cmd := append([]string{"-shared", "-fPIC", "-o", out}, args...)
	if b, err := exec.Command(gcc, cmd...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", cmd, err, b)
	}
}
