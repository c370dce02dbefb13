package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFindSystemToolkitAndPip(t *testing.T) {
	root := t.TempDir()
	touch(t, filepath.Join(root, "usr/lib/x86_64-linux-gnu/libcuda.so.1"))
	touch(t, filepath.Join(root, "usr/local/cuda-11.8/targets/x86_64-linux/lib/libcublas.so.11"))
	touch(t, filepath.Join(root, "usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublas.so.12"))
	home := filepath.Join(root, "home/u")
	touch(t, filepath.Join(home, ".local/lib/python3.11/site-packages/nvidia/cusparselt/lib/libcusparseLt.so.0"))
	// The device image's layout: a venv under /opt with CUDA 13 wheels.
	touch(t, filepath.Join(root, "opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13"))
	touch(t, filepath.Join(root, "usr/local/nvidia/lib64/libcuda.so.1"))
	touch(t, filepath.Join(root, "etc/ld.so.conf.d/x.conf"))
	os.WriteFile(filepath.Join(root, "etc/ld.so.conf.d/x.conf"), []byte("# comment\n/weird/lib\n"), 0o644)
	touch(t, filepath.Join(root, "weird/lib/libcublasLt.so.12"))
	s := Search{Root: root, Arch: "x86_64-linux-gnu", Getenv: env(map[string]string{"HOME": home})}

	for _, c := range []struct {
		lib  Lib
		want string
	}{
		// The distribution's folder comes before the container mount.
		{LibDriver, "usr/lib/x86_64-linux-gnu/libcuda.so.1"},
		// The newest toolkit folder is searched first.
		{LibCublas, "usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublas.so.12"},
		{LibSparseLt, "home/u/.local/lib/python3.11/site-packages/nvidia/cusparselt/lib/libcusparseLt.so.0"},
		{LibRuntime, "opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13"},
		{LibCublasLt, "weird/lib/libcublasLt.so.12"},
	} {
		got, err := s.Find(c.lib)
		if err != nil {
			t.Fatalf("%s: %v", c.lib.Name, err)
		}
		if got != filepath.Join(root, c.want) {
			t.Errorf("%s: found %s, want %s", c.lib.Name, got, c.want)
		}
	}
}

func TestFindEnvOrder(t *testing.T) {
	root := t.TempDir()
	a, b, sys := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "usr/lib64")
	touch(t, filepath.Join(a, "libcusparseLt.so.0"))
	touch(t, filepath.Join(b, "libcusparseLt.so.0"))
	touch(t, filepath.Join(sys, "libcusparseLt.so.0"))
	touch(t, filepath.Join(b, "libcublas.so.13"))
	touch(t, filepath.Join(a, "libcublas.so.12"))
	// ARMOR_CUDA_LIBS beats LD_LIBRARY_PATH beats the system folders; a file
	// named in ARMOR_CUDA_LIBS stands for its folder.
	s := Search{Root: root, Getenv: env(map[string]string{"ARMOR_CUDA_LIBS": filepath.Join(b, "libcublas.so.13"), "LD_LIBRARY_PATH": a})}
	if got, _ := s.Find(LibSparseLt); got != filepath.Join(b, "libcusparseLt.so.0") {
		t.Errorf("ARMOR_CUDA_LIBS not first: %s", got)
	}
	s.Getenv = env(map[string]string{"LD_LIBRARY_PATH": a + ":" + b})
	if got, _ := s.Find(LibSparseLt); got != filepath.Join(a, "libcusparseLt.so.0") {
		t.Errorf("LD_LIBRARY_PATH order: %s", got)
	}
	// Within the path order, the first folder holding any soname wins.
	if got, _ := s.Find(LibCublas); got != filepath.Join(a, "libcublas.so.12") {
		t.Errorf("cublas: %s", got)
	}
	s.Getenv = env(nil)
	if got, _ := s.Find(LibSparseLt); got != filepath.Join(sys, "libcusparseLt.so.0") {
		t.Errorf("system: %s", got)
	}
}

func TestNotFoundMessage(t *testing.T) {
	root := t.TempDir()
	venv := filepath.Join(root, "venv")
	os.MkdirAll(filepath.Join(venv, "lib/python3.12/site-packages/nvidia/cublas/lib"), 0o755)
	s := Search{Root: root, Arch: "x86_64-linux-gnu", Getenv: env(map[string]string{
		"ARMOR_CUDA_LIBS": "/nowhere/x", "LD_LIBRARY_PATH": "/opt/y", "VIRTUAL_ENV": venv})}
	_, err := s.Find(LibCublas)
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"cuBLAS not found", "libcublas.so.12",
		"/nowhere/x [ARMOR_CUDA_LIBS]", "/opt/y [LD_LIBRARY_PATH]",
		filepath.Join(root, "usr/lib/x86_64-linux-gnu") + " [system]",
		filepath.Join(root, "usr/local/cuda-*/lib64") + " [CUDA toolkit (no match)]",
		filepath.Join(venv, "lib/python3.12/site-packages/nvidia/cublas/lib") + " [pip (VIRTUAL_ENV)]",
		filepath.Join(root, "opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib") + " [pip (system) (no match)]",
		"set ARMOR_CUDA_LIBS",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// The driver is never searched in pip folders.
	_, err = s.Find(LibDriver)
	if err == nil || strings.Contains(err.Error(), "site-packages") || !strings.Contains(err.Error(), "CUDA driver not found (looked for libcuda.so.1") {
		t.Errorf("driver message: %v", err)
	}
}

func TestFindContainerDriverAndCu13(t *testing.T) {
	root := t.TempDir()
	touch(t, filepath.Join(root, "usr/local/nvidia/lib64/libcuda.so.1"))
	site := "opt/torch/.venv/lib/python3.12/site-packages/nvidia"
	touch(t, filepath.Join(root, site, "cu13/lib/libcublas.so.13"))
	touch(t, filepath.Join(root, site, "cusparselt/lib/libcusparseLt.so.0"))
	s := Search{Root: root, Getenv: env(nil)}
	for lib, want := range map[*Lib]string{
		&LibDriver:   "usr/local/nvidia/lib64/libcuda.so.1",
		&LibCublas:   site + "/cu13/lib/libcublas.so.13",
		&LibSparseLt: site + "/cusparselt/lib/libcusparseLt.so.0",
	} {
		got, err := s.Find(*lib)
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("%s: %s, %v", lib.Name, got, err)
		}
	}
}
