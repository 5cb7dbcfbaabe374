package config

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(readSpec(f))
	for _, s := range []string{
		"",
		"# comment\n",
		"---\n",
		"port: {clientID: ${A}, clientSecret: \"${B:-x}\"}\n",
		"kafka:\n  brokers: [${B1}, b:1]\n  sasl: {mechanism: PLAIN, username: ${U}}\n",
		"executor: {maxConcurrent: ${N}, shutdownTimeout: 90s}\nlogs: {maxBatchBytes: 64KiB}\n",
		"actions:\n  a: &c {command: [bash], env: {X: .x}}\n  b: {<<: *c, timeout: 1m}\n",
		"actions:\n  ${A}: {command: [\"./x.sh\"], workdir: \"\", onInterrupted: rerun}\n",
		"security: {mask: [\"${T}\", \"\"], verifySignature: ${V:-true}}\n",
		"executor: {sandbox: required, runAs: \"47000-47099\", cgroups: true, limits: {processes: 64, cpuTime: 10m, memory: 1GiB}}\n",
		"actions:\n  a: {command: [bash], sandbox: off, limits: {openFiles: 256, runDirSize: 64MiB}}\n",
		"actions:\n  a: {command: [bash], sandbox: {read: [/opt], write: [/cache], exec: [/x]}}\n",
		"actions:\n  a: {command: [bash], sandbox: [off]}\n",
		"bogus: 1\n",
		"[1, 2]\n",
	} {
		f.Add([]byte(s))
	}
	lookup := env(map[string]string{"A": "a: b # c", "B": "", "N": "3", "V": "false", "T": "{x: [y]}", "U": "\n- z"})
	f.Fuzz(func(t *testing.T, raw []byte) {
		// ParseAll never panics; with no problems it is Parse, with some Parse fails.
		all, lines, ps := ParseAll(raw, lookup)
		if all != nil {
			_ = ps.WithLines(lines)
			_ = all.Validate(func(string) error { return nil }, func(string) (string, error) { return "", errors.New("no") })
		}
		c, err := Parse(raw, lookup)
		if (err == nil) != (ps == nil) {
			t.Fatalf("Parse error %v, ParseAll problems %v", err, ps)
		}
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error: %v", err)
			}
			return
		}
		// Defaults hold for every accepted config.
		if c.Port.BaseURL == "" || c.Kafka.StartOffset == "" || c.Kafka.GroupProtocol == "" || c.Metrics.Addr == "" ||
			c.Message.RunID == "" || c.Message.Action == "" || c.Message.Properties == "" || c.Message.Entity == "" {
			t.Fatalf("defaults missing: %+v", c)
		}
		for _, m := range c.Security.Mask {
			if m == "" {
				t.Fatal("empty mask value kept")
			}
		}
		// Validation never panics either.
		_ = c.Validate(func(string) error { return nil }, func(string) (string, error) { return "", errors.New("no") })
		c.ResolveCommands("/base")
	})
}

// FuzzUIDRange: executor.runAs never panics, and what it accepts is a range of non-root uids.
func FuzzUIDRange(f *testing.F) {
	for _, s := range []string{"20000-20999", "1", " 5 - 9 ", "0-10", "9-5", "-", "1-", "99999999999999999999-1", "4294967295"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, err := UIDRange(s)
		if err == nil && (lo < 1 || hi < lo) {
			t.Fatalf("UIDRange(%q) = %d-%d", s, lo, hi)
		}
	})
}
