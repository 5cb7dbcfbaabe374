package consumer

import (
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SetAdminClient makes the collector read the broker through cl from now on: a test points it
// at a broker that refuses, after a refresh that worked.
func (c *LagCollector) SetAdminClient(cl *kgo.Client) { c.adm = kadm.NewClient(cl) }

// SetDecompressor makes the collector decompress through d and returns the decompressor it
// had: a test counts what reading an age decompresses.
func (c *LagCollector) SetDecompressor(d kgo.Decompressor) kgo.Decompressor {
	prev := c.dec
	c.dec = d
	return prev
}
