package shim

import "syscall"

// Options confine one run's command; the shim applies them between fork and exec, in this
// order: cgroups, oom_score_adj, rlimits, ids (then no capability is left), Landlock. With
// IDs or Landlock the command also gets no_new_privs. The zero value confines nothing.
type Options struct {
	// FenceMs is the fence (README "Delivery"): no renewal from the agent for this many
	// milliseconds kills the command's tree (see the package doc: Renew, or a Lasting
	// message for its own time); 0: no fence. The shim applies it, not the command.
	FenceMs int64
	// RenewalsFD is the fd of the pipe the executor writes its renewals to, read only when
	// the shim looks at the fence (see the package doc); 0: renewals come on the socket.
	RenewalsFD  int
	Cgroups     []string // cgroup.procs files the command joins
	OOMScoreAdj *int     // written to /proc/self/oom_score_adj
	Rlimits     []Rlimit
	UID, GID    int // both > 0: the command's ids, never 0 nor the shim's own
	// LandlockFlags go with the ruleset at [RulesetFD] (go-landlock's NewRulesetFD);
	// Landlock says whether there is one.
	Landlock      bool
	LandlockFlags uint32
	// Gate: the command starts only once the executor says go ([Go] on the control socket);
	// until then the shim sets it up and waits (see the package doc). [GateFlag].
	Gate bool
}

// Rlimit is one setrlimit; a negative value is RLIM_INFINITY.
type Rlimit struct {
	Resource   int
	Soft, Hard int64
}

// needsStage reports whether o holds what only the command's own process can take on: a
// cgroup, ids, a Landlock domain, or RLIMIT_NPROC.
func (o Options) needsStage() bool {
	if len(o.Cgroups) > 0 || o.UID > 0 || o.Landlock {
		return true
	}
	for _, r := range o.Rlimits {
		if r.Resource == rlimitNproc {
			return true
		}
	}
	return false
}

const rlimitNproc = 6 // RLIMIT_NPROC

// nprocLimit is the command's RLIMIT_NPROC under a uid of its own, 0 without one.
func (o Options) nprocLimit() int64 {
	if o.UID <= 0 {
		return 0
	}
	var n int64
	for _, r := range o.Rlimits {
		if r.Resource == rlimitNproc && r.Soft >= 0 {
			n = r.Soft
		}
	}
	return n
}

// Args is o as the shim's command-line options (the same for the C and the Go shim).
func (o Options) Args() []string { return o.AppendArgs(nil) }

// AppendArgs appends Args to a: a caller that sizes a for the whole command line builds it
// without growing it option by option.
func (o Options) AppendArgs(a []string) []string {
	if o.FenceMs > 0 {
		a = append(a, FenceFlag, itoa64(o.FenceMs))
	}
	if o.RenewalsFD > 0 {
		a = append(a, RenewalsFlag, itoa64(int64(o.RenewalsFD)))
	}
	for _, c := range o.Cgroups {
		a = append(a, "--cgroup", c)
	}
	if o.OOMScoreAdj != nil {
		a = append(a, "--oom", itoa64(int64(*o.OOMScoreAdj)))
	}
	for _, r := range o.Rlimits {
		a = append(a, "--rlimit", itoa64(int64(r.Resource))+":"+itoa64(r.Soft)+":"+itoa64(r.Hard))
	}
	if o.UID > 0 && o.GID > 0 {
		a = append(a, "--ids", itoa64(int64(o.UID))+":"+itoa64(int64(o.GID)))
	}
	if o.Landlock {
		a = append(a, "--landlock", itoa64(RulesetFD)+":"+itoa64(int64(o.LandlockFlags)))
	}
	if o.Gate {
		a = append(a, GateFlag, gateValue)
	}
	return a
}

// ParseArgs reads the options before "--" and returns them with what follows "--" (PATH
// ARGV0 [ARG...]). It refuses what the C shim refuses.
func ParseArgs(args []string) (o Options, rest []string, err error) {
	i := 0
	for ; i < len(args) && args[i] != "--"; i += 2 {
		if i+1 >= len(args) {
			return Options{}, nil, syscall.EINVAL
		}
		if !o.set(args[i], args[i+1]) {
			return Options{}, nil, syscall.EINVAL
		}
	}
	if i >= len(args) || o.Landlock && o.RenewalsFD == RulesetFD {
		return Options{}, nil, syscall.EINVAL
	}
	return o, args[i+1:], nil
}

// set applies one option; false when it is unknown or its value is malformed.
func (o *Options) set(name, v string) bool {
	switch name {
	case FenceFlag:
		ms, ok := parseInt(v, 1, 86400000)
		if !ok {
			return false
		}
		o.FenceMs = ms
	case RenewalsFlag:
		fd, ok := parseInt(v, ControlFD+1, RulesetFD+1)
		if !ok {
			return false
		}
		o.RenewalsFD = int(fd)
	case "--cgroup":
		if v == "" || v[0] != '/' || len(o.Cgroups) == 4 {
			return false
		}
		o.Cgroups = append(o.Cgroups, v)
	case "--oom":
		n, ok := parseInt(v, -1000, 1000)
		if !ok {
			return false
		}
		adj := int(n)
		o.OOMScoreAdj = &adj
	case "--rlimit":
		f := split(v)
		if len(f) != 3 || len(o.Rlimits) == 16 {
			return false
		}
		res, ok1 := parseInt(f[0], 0, 63)
		soft, ok2 := parseInt(f[1], -1, maxInt64)
		hard, ok3 := parseInt(f[2], -1, maxInt64)
		if !ok1 || !ok2 || !ok3 {
			return false
		}
		o.Rlimits = append(o.Rlimits, Rlimit{Resource: int(res), Soft: soft, Hard: hard})
	case "--ids":
		f := split(v)
		if len(f) != 2 {
			return false
		}
		uid, ok1 := parseInt(f[0], 1, 1<<32-2)
		gid, ok2 := parseInt(f[1], 1, 1<<32-2)
		if !ok1 || !ok2 {
			return false
		}
		o.UID, o.GID = int(uid), int(gid)
	case "--landlock":
		f := split(v)
		if len(f) != 2 || f[0] != itoa64(RulesetFD) {
			return false
		}
		flags, ok := parseInt(f[1], 0, 1<<32-1)
		if !ok {
			return false
		}
		o.Landlock, o.LandlockFlags = true, uint32(flags)
	case GateFlag:
		if v != gateValue {
			return false
		}
		o.Gate = true
	default:
		return false
	}
	return true
}

const maxInt64 = 1<<63 - 1

func split(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseInt reads a decimal (a leading '-' allowed) within [min, max].
func parseInt(s string, min, max int64) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || n > (maxInt64-int64(s[i]-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, n >= min && n <= max
}

func itoa64(n int64) string {
	if n < 0 {
		return "-" + itoa64(-n)
	}
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
