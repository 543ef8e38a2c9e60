package app

import (
	"fmt"
	"os"
	"strings"
)

// secret reads a secret from the environment: NAME, or the file named by NAME_FILE (a mounted
// Kubernetes Secret). Both set is an error (which one would win is a guess); neither is "".
// Secrets are never logged.
func secret(getenv func(string) string, name string) (string, error) {
	v, file := getenv(name), getenv(name+"_FILE")
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return v, nil
}
