package consumer

import (
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SetAdminClient makes the collector read the broker through cl from now on: a test points it
// at a broker that refuses, after a refresh that worked.
func (c *LagCollector) SetAdminClient(cl *kgo.Client) { c.adm = kadm.NewClient(cl) }
