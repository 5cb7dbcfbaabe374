// Package statuspage loads a running agent's /status page in a real headless Chromium
// (README "Observability"): what an on-call sees after `kubectl port-forward pod/...`. It
// lives outside ./internal/agent/ because it needs a browser: without one it skips, and with
// CI=true it fails instead (.ci/run installs Debian's chromium).
package statuspage
