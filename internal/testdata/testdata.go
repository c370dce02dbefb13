// Package testdata finds the shared test data (../shared/testdata beside the
// repository root, or $ARMOR_TESTDATA) and the repository's own testdata for
// tests. It is the one place that reads ARMOR_TESTDATA and
// ARMOR_REQUIRE_TESTDATA.
package testdata

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Required reports whether missing shared test data fails tests instead of
// skipping them (ARMOR_REQUIRE_TESTDATA=1, as CI sets).
func Required() bool { return os.Getenv("ARMOR_REQUIRE_TESTDATA") == "1" }

// repoRoot is the nearest folder above the working directory (a package's
// folder when tests run) that holds go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("repository root (go.mod) not found from " + wd)
		}
	}
}

// Dir returns the shared test data directory. When it is absent the test is
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
	root, err := repoRoot()
	if err != nil {
		missing(t, err.Error())
		return ""
	}
	td := filepath.Join(filepath.Dir(root), "shared", "testdata")
	if st, err := os.Stat(td); err != nil || !st.IsDir() {
		missing(t, td+" not found (set ARMOR_TESTDATA)")
		return ""
	}
	return td
}

// File returns the path of a file or folder under the shared test data
// directory, with the same skip/fail rule when it is missing.
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
	if Required() {
		t.Fatalf("test data required (ARMOR_REQUIRE_TESTDATA=1): %s", why)
	}
	t.Skipf("skipping: test data not available: %s", why)
}
