module github.com/armor-llm/armor

go 1.26.0

require (
	github.com/dlclark/regexp2 v1.11.5
	github.com/ebitengine/purego v0.11.3
	github.com/klauspost/cpuid/v2 v2.4.2
	golang.org/x/sys v0.50.0
	golang.org/x/text v0.44.0
)
