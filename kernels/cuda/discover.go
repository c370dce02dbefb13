package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Lib names one shared library the backend loads and the file names it may
// have, best first.
type Lib struct {
	Name  string   // human name used in messages
	Files []string // sonames tried in order
	Pip   string   // folder of pip's nvidia/<Pip>/lib wheel layout ("" = none)
}

// The libraries the backend uses. The driver comes with the NVIDIA driver
// (never from pip); cuBLAS and cuSPARSELt come from a CUDA toolkit, the
// distribution, or pip wheels (nvidia-cublas-cu12, nvidia-cusparselt-cu12).
// cudart is optional: the driver API replaces it, and it is only reported.
var (
	LibDriver   = Lib{Name: "CUDA driver", Files: []string{"libcuda.so.1", "libcuda.so"}}
	LibRuntime  = Lib{Name: "CUDA runtime", Files: []string{"libcudart.so.13", "libcudart.so.12"}, Pip: "cuda_runtime"}
	LibCublas   = Lib{Name: "cuBLAS", Files: []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}, Pip: "cublas"}
	LibCublasLt = Lib{Name: "cuBLASLt", Files: []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"}, Pip: "cublas"}
	LibSparseLt = Lib{Name: "cuSPARSELt", Files: []string{"libcusparseLt.so.0", "libcusparseLt.so"}, Pip: "cusparselt"}
)

// Search describes where libraries are looked for. The zero value searches
// the real system with the process environment.
type Search struct {
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// Root is prepended to the fixed system folders ("" = "/"), so that tests
	// can fake a file system in a temporary folder. Folders from the
	// environment are used as given.
	Root string
	// Arch is the Debian multiarch triplet folder ("" = this machine's).
	Arch string
}

func (s Search) getenv(k string) string {
	if s.Getenv != nil {
		return s.Getenv(k)
	}
	return os.Getenv(k)
}

func (s Search) arch() string {
	if s.Arch != "" {
		return s.Arch
	}
	if runtime.GOARCH == "arm64" {
		return "aarch64-linux-gnu"
	}
	return "x86_64-linux-gnu"
}

// place is one folder to look in and why (for the error message).
type place struct{ dir, from string }

// Places lists, in search order, the folders looked in for lib, each with
// where it came from. Glob patterns are expanded; a pattern that matches
// nothing is returned as itself with from "(no match)" so that the error
// message still shows it was tried.
func (s Search) places(lib Lib) []place {
	var out []place
	seen := map[string]bool{}
	add := func(dir, from string) {
		if dir == "" || seen[dir] {
			return
		}
		seen[dir] = true
		out = append(out, place{dir, from})
	}
	glob := func(pat, from string) {
		m, _ := filepath.Glob(pat)
		if len(m) == 0 {
			add(pat, from+" (no match)")
			return
		}
		// Newest CUDA versions first: cuda-12.4 before cuda-11.8.
		sort.Sort(sort.Reverse(sort.StringSlice(m)))
		for _, d := range m {
			add(d, from)
		}
	}
	// 1. ARMOR_CUDA_LIBS: a list of folders (or library files, whose folder
	// is used), separated by ':' — the explicit choice wins.
	for _, d := range filepath.SplitList(s.getenv("ARMOR_CUDA_LIBS")) {
		if st, err := os.Stat(d); err == nil && !st.IsDir() {
			d = filepath.Dir(d)
		}
		add(d, "ARMOR_CUDA_LIBS")
	}
	// 2. LD_LIBRARY_PATH, as the dynamic loader would.
	for _, d := range filepath.SplitList(s.getenv("LD_LIBRARY_PATH")) {
		add(d, "LD_LIBRARY_PATH")
	}
	r := func(p string) string { return filepath.Join(s.root(), p) }
	// 3. Distribution folders (Debian/Ubuntu multiarch, RHEL lib64, WSL).
	add(r("/usr/lib/"+s.arch()), "system")
	add(r("/usr/lib64"), "system")
	add(r("/usr/lib"), "system")
	add(r("/usr/local/lib"), "system")
	// Folders the dynamic loader's configuration names (CUDA packages
	// install a cuda-*.conf there).
	if confs, _ := filepath.Glob(r("/etc/ld.so.conf.d/*.conf")); len(confs) > 0 {
		sort.Strings(confs)
		for _, c := range confs {
			b, err := os.ReadFile(c)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); strings.HasPrefix(line, "/") {
					add(r(line), "ld.so.conf.d")
				}
			}
		}
	}
	if lib.Name == LibDriver.Name {
		// Containers mount the driver's libraries here (nvidia-container-toolkit).
		add(r("/usr/local/nvidia/lib64"), "system (container)")
		add(r("/usr/local/nvidia/lib"), "system (container)")
		add(r("/usr/lib/wsl/lib"), "system (WSL)")
		add(r("/usr/lib/"+s.arch()+"/nvidia/current"), "system")
	}
	// 4. CUDA toolkits.
	for _, base := range []string{"/usr/local/cuda", "/usr/local/cuda-*", "/opt/nvidia/cuda*"} {
		glob(r(base+"/lib64"), "CUDA toolkit")
		glob(r(base+"/targets/*/lib"), "CUDA toolkit")
	}
	if cp := s.getenv("CUDA_PATH"); cp != "" {
		add(filepath.Join(cp, "lib64"), "CUDA_PATH")
	}
	if cp := s.getenv("CUDA_HOME"); cp != "" {
		add(filepath.Join(cp, "lib64"), "CUDA_HOME")
	}
	// 5. pip wheels: <site-packages>/nvidia/*/lib under the usual Python
	// prefixes (venv, conda, user, system, /opt/*/.venv). CUDA 12 wheels
	// have one folder per library (nvidia/cublas/lib); CUDA 13 wheels share
	// nvidia/cu13/lib; cuSPARSELt's wheel has nvidia/cusparselt/lib.
	if lib.Pip != "" {
		var prefixes []place
		if v := s.getenv("VIRTUAL_ENV"); v != "" {
			prefixes = append(prefixes, place{v + "/lib/python3*/site-packages", "pip (VIRTUAL_ENV)"})
		}
		if v := s.getenv("CONDA_PREFIX"); v != "" {
			prefixes = append(prefixes, place{v + "/lib/python3*/site-packages", "pip (CONDA_PREFIX)"})
		}
		if h := s.getenv("HOME"); h != "" {
			prefixes = append(prefixes, place{h + "/.local/lib/python3*/site-packages", "pip (user)"})
		}
		for _, p := range []string{"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
			"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages",
			"/opt/*/.venv/lib/python3*/site-packages", "/opt/*/lib/python3*/site-packages"} {
			prefixes = append(prefixes, place{r(p), "pip (system)"})
		}
		for _, p := range prefixes {
			glob(p.dir+"/nvidia/*/lib", p.from)
		}
	}
	// The CUDA driver may also sit in conda's lib (as a stub, which then
	// fails at cuInit with CUDA_ERROR_STUB_LIBRARY: reported as such).
	if v := s.getenv("CONDA_PREFIX"); v != "" {
		add(v+"/lib", "CONDA_PREFIX")
	}
	return out
}

func (s Search) root() string {
	if s.Root == "" {
		return "/"
	}
	return s.Root
}

// NotFoundError says which library was not found and every place looked.
type NotFoundError struct {
	Lib    Lib
	Places []string // "dir [from]"
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cuda: %s not found (looked for %s) in:", e.Lib.Name, strings.Join(e.Lib.Files, ", "))
	for _, p := range e.Places {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	b.WriteString("\nset ARMOR_CUDA_LIBS to the folder(s) holding it")
	return b.String()
}

// Find returns the path of lib in the first place (in search order) that
// holds one of its file names (tried in order within a place), or a
// *NotFoundError. A folder named in ARMOR_CUDA_LIBS therefore always wins.
func (s Search) Find(lib Lib) (string, error) {
	ps := s.places(lib)
	for _, p := range ps {
		for _, f := range lib.Files {
			path := filepath.Join(p.dir, f)
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				return path, nil
			}
		}
	}
	e := &NotFoundError{Lib: lib}
	for _, p := range ps {
		e.Places = append(e.Places, p.dir+" ["+p.from+"]")
	}
	return "", e
}
