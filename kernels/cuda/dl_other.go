//go:build !(linux && (amd64 || arm64)) || nocuda

package cuda

import (
	"fmt"
	"runtime"
)

const dlSupported = false

// Without purego the NVIDIA backend is absent: on platforms purego cannot
// dlopen on without cgo, and with -tags nocuda, which keeps CGO_ENABLED=0
// binaries fully static (importing purego links them dynamically against
// libc, libdl and libpthread, for dlopen).
var errPlatform = fmt.Errorf("cuda: the NVIDIA backend is built for linux/amd64 and linux/arm64 without -tags nocuda (this is %s/%s)", runtime.GOOS, runtime.GOARCH)

func dlopen(path string) (uintptr, error)           { return 0, errPlatform }
func dlsym(h uintptr, name string) (uintptr, error) { return 0, errPlatform }
func registerFunc(fptr any, sym uintptr)            {}
