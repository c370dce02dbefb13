//go:build !(linux && (amd64 || arm64))

package cuda

import (
	"fmt"
	"runtime"
)

const dlSupported = false

var errPlatform = fmt.Errorf("cuda: the NVIDIA backend is built for linux/amd64 and linux/arm64 only (this is %s/%s)", runtime.GOOS, runtime.GOARCH)

func dlopen(path string) (uintptr, error)           { return 0, errPlatform }
func dlsym(h uintptr, name string) (uintptr, error) { return 0, errPlatform }
func registerFunc(fptr any, sym uintptr)            {}
