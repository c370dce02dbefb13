//go:build !amd64 && !arm64

package kernels

func detectLevel() (Level, bool) { return Generic, false }
