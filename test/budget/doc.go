// Package budget holds the long tests of how replicas share Port's API budget (README
// "Port's API budget"):
// several agents in one consumer group on the kafkatest fixture, against one Port emulator
// whose budget they share, with real commands. They live apart from ./agent/ and the other
// packages CI runs three times, because each takes tens of seconds by design: the budget,
// not the machine, sets their pace.
package budget
