package config

type Action struct {
	Command       []string          `yaml:"command"`
	Env           map[string]string `yaml:"env"` // NAME: jq expression over the run context
	Timeout       Duration          `yaml:"timeout"`
	MaxConcurrent int               `yaml:"maxConcurrent"`
	Workdir       string            `yaml:"workdir"`
	OnInterrupted string            `yaml:"onInterrupted"`
	PortAPI       PortAPI           `yaml:"portAPI"`
	// SecretInputs names inputs Port sends encrypted (secret inputs) for the agent to decrypt
	// for the command; inputs the message's schema marks "encryption" are decrypted anyway.
	SecretInputs []string `yaml:"secretInputs"`
	// WorkflowNode makes this entry the command of Port Workflows' node runs that match it.
	WorkflowNode *WorkflowNode `yaml:"workflowNode"`
	// When is jq over the run's message: only a run for which it gives true is this
	// deployment's; any other result leaves the run to another deployment ("" : every run).
	When string `yaml:"when"`
	// Sandbox adds to this action's sandbox what its command needs, or turns it off.
	Sandbox ActionSandbox `yaml:"sandbox"`
	// Limits replace executor.limits one by one for this action.
	Limits Limits `yaml:"limits"`
}

// WorkflowNode selects workflow node runs (ids wfnr_...): every field given must match.
type WorkflowNode struct {
	// URL is the node's invocation URL (payload.action.invocationMethod.url), where Port's
	// own agent reads it: the one field of a node run Port's code shows.
	URL string `yaml:"url"`
	// Workflow and Node are identifiers no Port source shows in a node run's message yet
	// (context.workflow, context.node, node.identifier are read if Port sends them).
	Workflow string `yaml:"workflow"`
	Node     string `yaml:"node"`
	Selector string `yaml:"selector"` // jq over the message; selects when it gives true
}

// WorkflowNodeRuns is what the agent does with a node run no action's workflowNode matches:
// Unmatched "leave" (default) leaves it to another deployment, "fail" completes it FAILED.
type WorkflowNodeRuns struct {
	Unmatched string `yaml:"unmatched"`
}

// PortAPI is what a run's command may call through the agent's Port API proxy beyond its
// defaults (its blueprint's entities, its own run): see package portproxy. Validate checks
// the rules; the agent compiles them (ParseAllowRules) when it assembles the action.
type PortAPI struct {
	// Allow lists extra routes, "[METHOD ]PATH" with "*" for one segment and a final "**"
	// for the rest, e.g. "GET /v1/blueprints/*".
	Allow []string `yaml:"allow"`
}
