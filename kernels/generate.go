package kernels

// The assembly and the Go declarations of its kernels are generated, with the
// tuning parameters' defaults (python3 asmgen/gen_amd64.py --help lists them).
// CI runs go generate and fails if the committed files differ.

//go:generate python3 -B asmgen/gen_amd64.py -o kernels_amd64.s --decl kernels_decl_amd64.go
//go:generate python3 -B asmgen/gen_arm64.py -o kernels_arm64.s --decl kernels_decl_arm64.go
