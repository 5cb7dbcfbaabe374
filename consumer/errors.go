package consumer

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

func kerrOf(code int16) error { return kerr.ErrorForCode(code) }

// isFatal tells errors that retrying cannot fix (bad credentials, no permission) from
// transient ones, so the agent exits with a clear message instead of looping quietly.
func isFatal(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
			kerr.ClusterAuthorizationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState:
			return true
		}
	}
	return false
}
