module github.com/armor-llm/armor

go 1.26.0

require (
	github.com/dlclark/regexp2 v1.11.5
	golang.org/x/text v0.44.0
)
