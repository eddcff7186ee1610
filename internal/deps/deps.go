// Package deps pins modules the next changes import; removed once they do.
package deps

import (
	_ "github.com/decred/dcrd/dcrec/secp256k1/v4"
	_ "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	_ "github.com/google/go-containerregistry/pkg/v1/empty"
	_ "github.com/google/go-containerregistry/pkg/v1/layout"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "helm.sh/helm/v4/pkg/chart/v2/lint"
	_ "helm.sh/helm/v4/pkg/chart/v2/loader"
	_ "helm.sh/helm/v4/pkg/engine"
)
