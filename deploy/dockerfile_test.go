package deploy

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continued instruction
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(strings.TrimSpace(cont) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return out
}

// TestDockerfile reads the Dockerfile (no docker engine here): base images pinned to a version,
// a Go at least go.mod's, a static -trimpath build with the version stamped in, a distroless
// nonroot final stage running as 65532, and a .dockerignore that keeps the context small
// without dropping what the build needs.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../Dockerfile")
	var froms []string
	final := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
			final = i
		}
	}
	require.GreaterOrEqual(t, len(froms), 2, "multi-stage")
	pinned := regexp.MustCompile(`^(--platform=\S+ )?([a-z0-9.\-/]+):([A-Za-z0-9.\-_]+)(@sha256:[0-9a-f]{64})?( AS \w+)?$`)
	for _, f := range froms {
		m := pinned.FindStringSubmatch(f)
		require.NotNil(t, m, "FROM %s: not an image pinned by tag (and optionally digest)", f)
		require.NotEqual(t, "latest", m[3], "FROM %s", f)
	}

	// The build stage's Go is at least go.mod's go directive.
	build := pinned.FindStringSubmatch(froms[0])
	require.Equal(t, "golang", build[2])
	goVersion := strings.SplitN(build[3], "-", 2)[0]
	gomod := string(mustRead(t, "../go.mod"))
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	require.NotNil(t, want)
	require.False(t, olderVersion(goVersion, want[1]), "golang image %s older than go.mod's go %s", goVersion, want[1])

	// Final stage: distroless static, nonroot, nothing run in it.
	require.Regexp(t, `^gcr\.io/distroless/static-debian\d+:nonroot(@sha256:[0-9a-f]{64})?$`, froms[len(froms)-1])
	var user, entrypoint string
	for _, in := range ins[final+1:] {
		switch in.cmd {
		case "RUN":
			t.Fatalf("RUN in the final stage (distroless has no shell): %s", in.args)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}
	require.Equal(t, "65532:65532", user)
	require.Equal(t, `["/usr/local/bin/podmedic"]`, entrypoint)

	// The build: static, reproducible paths, stripped, version stamped.
	gb := goBuild(t, ins)
	for _, s := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X github.com/podmedic/podmedic/internal/version.version=${VERSION}"`, "./cmd/podmedic"} {
		require.Contains(t, gb, s)
	}

	// .dockerignore keeps .git and the caches out, and none of the files the build needs.
	ignore := dockerignore(t, "../.dockerignore")
	for _, p := range []string{".git", ".cache", "bin", "deploy", "e2e/main_test.go", "rules/testdata/x.yaml", "app/app_test.go"} {
		require.True(t, ignore(p), ".dockerignore should exclude %s", p)
	}
	out, err := run("go", "list", "-C", "..", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`, "./cmd/podmedic")
	require.NoError(t, err)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	needed := strings.Fields(string(out))
	require.NotEmpty(t, needed)
	for _, f := range append(needed, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")) {
		rel, err := filepath.Rel(root, f)
		require.NoError(t, err)
		require.False(t, ignore(filepath.ToSlash(rel)), ".dockerignore excludes %s, which the build needs", rel)
	}
	t.Logf("Dockerfile: %s; .dockerignore keeps the %d files the build needs", strings.Join(froms, " | "), len(needed))
}

// olderVersion reports whether dotted version a (1.26.8) is older than b (1.26.0).
func olderVersion(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// goBuild returns the go build command of the Dockerfile's RUN instruction.
func goBuild(t *testing.T, ins []instruction) string {
	t.Helper()
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			return in.args
		}
	}
	t.Fatal("no RUN ... go build in the Dockerfile")
	return ""
}

// dockerignore returns a matcher of the patterns in path, for the plain patterns this
// repository uses: a path (or its leading directories), "/x" anchored at the root, and
// "**/pattern" at any depth.
func dockerignore(t *testing.T, path string) func(string) bool {
	t.Helper()
	var pats []string
	for _, line := range strings.Split(string(mustRead(t, path)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		require.False(t, strings.HasPrefix(line, "!"), "exceptions are not supported by this test: %s", line)
		pats = append(pats, strings.TrimPrefix(line, "/"))
	}
	return func(p string) bool {
		parts := strings.Split(p, "/")
		for _, pat := range pats {
			if rest, ok := strings.CutPrefix(pat, "**/"); ok {
				for _, part := range parts {
					if m, _ := filepath.Match(rest, part); m {
						return true
					}
				}
				continue
			}
			n := strings.Count(pat, "/") + 1
			for i := n; i <= len(parts); i++ {
				if m, _ := filepath.Match(pat, strings.Join(parts[:i], "/")); m && i == n {
					return true
				}
			}
		}
		return false
	}
}

// TestDockerfileBuildRecipe runs the Dockerfile's go build command here, for this machine's
// platform, and checks what it makes: a static executable (no interpreter, no shared
// libraries) that reports the version it was given.
func TestDockerfileBuildRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds podmedic")
	}
	gb := goBuild(t, parseDockerfile(t, "../Dockerfile"))
	_, cmd, ok := strings.Cut(gb, "go build")
	require.True(t, ok)
	out := filepath.Join(t.TempDir(), "podmedic")
	cmd = strings.Replace("go build"+cmd, "-o /out/podmedic", "-o "+out, 1)
	require.Contains(t, cmd, "-o "+out)
	c := exec.Command("sh", "-c", cmd)
	c.Dir = ".."
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "VERSION=v9.8.7-test")
	b, err := c.CombinedOutput()
	require.NoError(t, err, "%s\n%s", cmd, b)

	f, err := elf.Open(out)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "dynamically linked (has an interpreter)")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs)
	require.Nil(t, f.Section(".debug_info"), "not stripped (-s -w)")

	v, err := exec.Command(out, "version").CombinedOutput()
	require.NoError(t, err, "%s", v)
	require.Contains(t, string(v), "podmedic v9.8.7-test")
	fi, err := os.Stat(out)
	require.NoError(t, err)
	t.Logf("%s (%.1f MiB, static, stripped)", strings.TrimSpace(string(v)), float64(fi.Size())/(1<<20))
}
