package cliflag

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestStrings(t *testing.T) {
	var s Strings
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&s, "m", "model (repeatable)")
	if err := fs.Parse([]string{"-m", "a", "--m", "b,c"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s, []string{"a", "b,c"}) || s.String() != "a,b,c" {
		t.Fatalf("%q", s)
	}
}
