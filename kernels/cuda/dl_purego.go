//go:build linux && (amd64 || arm64) && !nocuda

package cuda

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// Importing purego makes CGO_ENABLED=0 binaries link dynamically against
// libc (for dlopen); build with -tags nocuda for a fully static binary
// without the NVIDIA backend.
const dlSupported = true

// dlopen loads a library with its symbols global, so that a library loaded
// later (cuBLAS needs cuBLASLt) can resolve against it.
func dlopen(path string) (uintptr, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return 0, fmt.Errorf("cuda: dlopen %s: %w", path, err)
	}
	return h, nil
}

func dlsym(h uintptr, name string) (uintptr, error) { return purego.Dlsym(h, name) }

// registerFunc makes *fptr call the C function at sym (purego.RegisterFunc;
// purego.RegisterLibFunc would panic on a missing symbol, so symbols are
// looked up first and a missing one becomes an error naming it).
func registerFunc(fptr any, sym uintptr) { purego.RegisterFunc(fptr, sym) }
