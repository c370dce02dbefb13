package kernels

import "github.com/klauspost/cpuid/v2"

// hasBMI2 gates the kernels that use RORX.
var hasBMI2 = cpuid.CPU.Supports(cpuid.BMI2)

func detectLevel() (Level, bool) {
	c := cpuid.CPU
	if !c.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.F16C) {
		return Generic, false
	}
	if !c.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.AVX512DQ) {
		return AVX2, false
	}
	return AVX512, c.Supports(cpuid.AVX512BF16)
}
