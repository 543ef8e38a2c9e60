//go:build tools

// Package tools pins kubeconform; hack/testbins.sh builds
// github.com/yannh/kubeconform/cmd/kubeconform from this module.
package tools

import _ "github.com/yannh/kubeconform/cmd/kubeconform"
