package kubeenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	// modulePath is the module whose root holds .cache/bin.
	modulePath = "github.com/podmedic/podmedic"

	// EnvBinDir overrides the directory holding the test binaries.
	EnvBinDir = "PODMEDIC_TESTBIN_DIR"
	// EnvRequireE2E, set to 1, makes Require fail instead of skip when the
	// binaries are missing.
	EnvRequireE2E = "PODMEDIC_REQUIRE_E2E"
)

// binaries are the programs Start runs, as named in BinDir.
var binaries = []string{"etcd", "kube-apiserver"}

// BinDir returns the directory holding the test binaries: $PODMEDIC_TESTBIN_DIR,
// else <module root>/.cache/bin, where the module root is the nearest directory
// at or above the working directory whose go.mod declares module
// github.com/podmedic/podmedic. It does not check that the binaries exist.
func BinDir() (string, error) {
	if dir := os.Getenv(EnvBinDir); dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("kubeenv: working directory: %w", err)
	}
	root, err := findModuleRoot(wd, modulePath)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "bin"), nil
}

// findModuleRoot walks up from dir to the directory whose go.mod declares
// module path mod.
func findModuleRoot(dir, mod string) (string, error) {
	for d := dir; ; {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && moduleLine(data) == mod {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("kubeenv: no go.mod of module %s at or above %s (set %s)", mod, dir, EnvBinDir)
		}
		d = parent
	}
}

// moduleLine returns the module path declared in a go.mod file, or "".
func moduleLine(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		return strings.Trim(strings.TrimSpace(rest), `"`)
	}
	return ""
}

// missingBinaries reports the binaries Start needs that are not executable
// regular files in dir, or nil when all are there.
func missingBinaries(dir string) error {
	var missing, notExec []string
	for _, name := range binaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			missing = append(missing, name)
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			notExec = append(notExec, name)
		}
	}
	var errs []string
	if len(missing) > 0 {
		errs = append(errs, fmt.Sprintf("%s not found in %s", strings.Join(missing, ", "), dir))
	}
	if len(notExec) > 0 {
		errs = append(errs, fmt.Sprintf("%s in %s not an executable file", strings.Join(notExec, ", "), dir))
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// Require returns BinDir when the kube-apiserver and etcd binaries are there.
// Otherwise it skips the test, or fails it when PODMEDIC_REQUIRE_E2E=1, with
// a message telling to run `make testbins`.
func Require(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	if err == nil {
		err = missingBinaries(dir)
	}
	if err == nil {
		return dir
	}
	msg := fmt.Sprintf("kubeenv: test binaries missing (run `make testbins` or hack/testbins.sh): %v", err)
	if os.Getenv(EnvRequireE2E) == "1" {
		t.Fatalf("%s; %s=1 makes this an error", msg, EnvRequireE2E)
	} else {
		t.Skipf("%s; set %s=1 to fail instead of skip", msg, EnvRequireE2E)
	}
	return dir
}
