package kubeenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestBinDirFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBinDir, dir)
	got, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if got != dir {
		t.Fatalf("BinDir() = %q, want %q", got, dir)
	}
}

func TestBinDirFromModuleRoot(t *testing.T) {
	t.Setenv(EnvBinDir, "")
	got, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(got))
	if filepath.Base(got) != "bin" || filepath.Base(filepath.Dir(got)) != ".cache" {
		t.Fatalf("BinDir() = %q, want <root>/.cache/bin", got)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := moduleLine(data); m != modulePath {
		t.Fatalf("go.mod at %s declares %q, want %q", root, m, modulePath)
	}
	// The test runs in internal/testenv/kubeenv: two levels below the root.
	wd, _ := os.Getwd()
	if rel, err := filepath.Rel(root, wd); err != nil || rel != filepath.Join("internal", "testenv", "kubeenv") {
		t.Fatalf("module root %q is not the root of %q", root, wd)
	}
}

func TestFindModuleRootSkipsOtherModules(t *testing.T) {
	root := t.TempDir()
	nested := filepath.Join(root, "hack", "testbins", "kube")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "// comment\nmodule \"github.com/podmedic/podmedic\" // root\n\ngo 1.26.0\n")
	write(filepath.Join(nested, "go.mod"), "module podmedic.local/testbins/kube\n")
	got, err := findModuleRoot(nested, modulePath)
	if err != nil {
		t.Fatal(err)
	}
	if got != root {
		t.Fatalf("findModuleRoot = %q, want %q", got, root)
	}
	if _, err := findModuleRoot(t.TempDir(), modulePath); err == nil {
		t.Fatal("findModuleRoot found a root outside any module")
	}
}

func TestModuleLine(t *testing.T) {
	for in, want := range map[string]string{
		"module github.com/podmedic/podmedic\n":            modulePath,
		"\n  module\t\"github.com/podmedic/podmedic\"  \n": modulePath,
		"// module x\nmodule y // z\n":                     "y",
		"modulex y\n":                                      "",
		"go 1.26\n":                                        "",
	} {
		if got := moduleLine([]byte(in)); got != want {
			t.Errorf("moduleLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// outcome is what Require did to a fakeTB.
type outcome struct {
	skipped, failed bool
	msg             string
	ret             string
}

// fakeTB records Skipf and Fatalf instead of ending the real test. The
// embedded TB provides the rest.
type fakeTB struct {
	testing.TB
	out *outcome
}

func (f fakeTB) Helper() {}

func (f fakeTB) Skipf(format string, args ...any) {
	f.out.skipped, f.out.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f fakeTB) Fatalf(format string, args ...any) {
	f.out.failed, f.out.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runRequire calls Require on a fakeTB in its own goroutine, as Skipf and
// Fatalf end the goroutine.
func runRequire(t *testing.T) outcome {
	var out outcome
	done := make(chan struct{})
	go func() {
		defer close(done)
		out.ret = Require(fakeTB{TB: t, out: &out})
	}()
	<-done
	return out
}

func TestRequire(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBinDir, dir)

	t.Run("missing skips", func(t *testing.T) {
		t.Setenv(EnvRequireE2E, "")
		out := runRequire(t)
		if !out.skipped || out.failed {
			t.Fatalf("Require with no binaries: %+v, want a skip", out)
		}
		if !strings.Contains(out.msg, "make testbins") {
			t.Errorf("skip message %q does not say to run make testbins", out.msg)
		}
	})

	t.Run("missing fails when required", func(t *testing.T) {
		t.Setenv(EnvRequireE2E, "1")
		out := runRequire(t)
		if !out.failed || out.skipped {
			t.Fatalf("Require with no binaries and %s=1: %+v, want a failure", EnvRequireE2E, out)
		}
		if !strings.Contains(out.msg, "make testbins") {
			t.Errorf("failure message %q does not say to run make testbins", out.msg)
		}
	})

	// A binary that is there but not executable counts as missing.
	for _, name := range binaries {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("not executable", func(t *testing.T) {
		t.Setenv(EnvRequireE2E, "1")
		if out := runRequire(t); !out.failed || !strings.Contains(out.msg, "not an executable") {
			t.Fatalf("Require with non-executable binaries: %+v, want a failure", out)
		}
	})

	for _, name := range binaries {
		if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("present", func(t *testing.T) {
		t.Setenv(EnvRequireE2E, "1")
		out := runRequire(t)
		if out.skipped || out.failed {
			t.Fatalf("Require with binaries present: %+v", out)
		}
		if out.ret != dir {
			t.Fatalf("Require = %q, want %q", out.ret, dir)
		}
	})
}

func TestStartWithoutBinaries(t *testing.T) {
	_, err := Start(t.Context(), Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make testbins") {
		t.Fatalf("Start without binaries: %v, want an error telling to run make testbins", err)
	}
}

func TestLineWriterTail(t *testing.T) {
	var logged []string
	w := &lineWriter{prefix: "[x] ", logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}
	for i := range tailLines + 5 {
		fmt.Fprintf(w, "line %d\r\n", i)
	}
	fmt.Fprint(w, "partial")
	if len(logged) != tailLines+5 || logged[0] != "[x] line 0" {
		t.Fatalf("logged %d lines, first %q", len(logged), logged[0])
	}
	tail := w.tail()
	if strings.Contains(tail, "line 4\n") || !strings.Contains(tail, "line 5\n") || !strings.HasSuffix(tail, "partial") {
		t.Fatalf("tail = %q", tail)
	}
	w.mute()
	w.flush()
	if len(logged) != tailLines+5 {
		t.Fatalf("muted writer still logs: %q", logged[len(logged)-1])
	}
}
