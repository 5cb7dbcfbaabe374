package runmsg

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/port-runner/port-runner/internal/echo"
)

// MaxFuture is how far ahead of this machine's clock a signed timestamp may be: clock skew
// between Port and the agent, not more. A message stamped later was not signed for now.
const MaxFuture = 5 * time.Minute

// ErrBadTimestamp: a signed message's timestamp is zero, absurd or too far ahead.
var ErrBadTimestamp = errors.New("bad signature timestamp")

// signedAt reads the timestamp in the headers h of a verified message (seconds since the
// epoch, as Port signs it) and checks that it can be true now: a signature proves who
// signed, the timestamp when, and a replay is only caught if "when" is trustworthy.
func signedAt(h *object, now time.Time) (time.Time, error) {
	if h == nil {
		return time.Time{}, fmt.Errorf("%w: no headers", ErrBadTimestamp)
	}
	tv, _ := h.get(HeaderTimestamp)
	text, err := timestampText(tv)
	if err != nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(text, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, fmt.Errorf("%w: %s", ErrBadTimestamp, echo.Quote(text))
	}
	limit := now.Add(MaxFuture)
	if sec > limit.Unix() {
		return time.Time{}, fmt.Errorf("%w: %d is more than %s ahead of this clock (%d)", ErrBadTimestamp, sec, MaxFuture, now.Unix())
	}
	return time.Unix(sec, 0).UTC(), nil
}
