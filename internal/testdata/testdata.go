// Package testdata finds the shared test data (../shared/testdata beside the
// repository root, or $ARMOR_TESTDATA) for tests.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the test data directory. When it is absent the test is
// skipped, or failed when ARMOR_REQUIRE_TESTDATA=1.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("ARMOR_TESTDATA"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		missing(t, "ARMOR_TESTDATA="+d+" is not a directory")
		return ""
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			td := filepath.Join(filepath.Dir(d), "shared", "testdata")
			if st, err := os.Stat(td); err == nil && st.IsDir() {
				return td
			}
			missing(t, td+" not found (set ARMOR_TESTDATA)")
			return ""
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	missing(t, "repository root not found from "+wd)
	return ""
}

// File returns the path of a file under the test data directory, with the
// same skip/fail rule when it is missing.
func File(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(t), rel)
	if _, err := os.Stat(p); err != nil {
		missing(t, p+" is missing")
	}
	return p
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("ARMOR_REQUIRE_TESTDATA") == "1" {
		t.Fatalf("test data required (ARMOR_REQUIRE_TESTDATA=1): %s", why)
	}
	t.Skipf("skipping: test data not available: %s", why)
}
