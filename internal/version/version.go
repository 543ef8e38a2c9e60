// Package version reports podmedic's version: set at build time with
// -ldflags "-X github.com/podmedic/podmedic/internal/version.version=v1.2.3", else the module
// version from the build info, else "dev".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

var version = ""

// Version returns the version string.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// String is the full version line.
func String() string {
	return fmt.Sprintf("podmedic %s (%s, %s/%s)", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
