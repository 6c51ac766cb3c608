// Package examples holds the SDL files people start from; the web console
// offers them as templates.
package examples

import "embed"

// Files are the example SDL files (*.yaml), provider.yaml excepted.
//
//go:embed cpu-service.yaml gpu-job.yaml multi-gpu-server.yaml persistent-db.yaml
var Files embed.FS
