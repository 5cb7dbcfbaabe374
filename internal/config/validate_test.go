package config

import (
	"reflect"
	"testing"
)

// Validate only validates: it leaves the config as it found it, valid or not, so what the
// agent runs is what the file says and nothing depends on Validate having been called.
func TestValidateChangesNothing(t *testing.T) {
	for _, tc := range []struct{ name, allow string }{
		{"valid", `["GET /v1/blueprints/*", "/v1/entities/**"]`},
		{"invalid", `["GET /v1/blueprints/*", "FETCH /v1/x"]`},
	} {
		yml := `
port: {clientID: id, clientSecret: secret, orgID: org}
kafka: {brokers: ["localhost:9092"], group: org.runner}
actions:
  a:
    command: [sh, -c, "exit 0"]
    env: {SERVICE_NAME: .properties.name}
    workflowNode: {workflow: w}
    portAPI: {allow: ` + tc.allow + `}
`
		c, before := mustParse(t, yml, noEnv), mustParse(t, yml, noEnv)
		_ = validate(c)
		if !reflect.DeepEqual(c, before) {
			t.Errorf("%s: Validate changed the config:\n got %+v\nwant %+v", tc.name, c.Actions, before.Actions)
		}
	}
}
