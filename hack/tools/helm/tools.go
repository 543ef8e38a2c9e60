//go:build tools

// Package tools pins helm; hack/testbins.sh builds helm.sh/helm/v4/cmd/helm
// from this module.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
