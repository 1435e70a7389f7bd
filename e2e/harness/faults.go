package harness

// WaitReady waits until every service of the stack answers /readyz 200: after
// a fault (a store restarted, a service killed and started again) the others
// may still be reconnecting. A chaos schedule calls it between faults, so
// each fault meets a stack that had recovered from the last. It fails the
// test, with the service's log tail, if one is not ready within the ready
// timeout.
func (st *Stack) WaitReady() {
	st.t.Helper()
	for _, name := range Services {
		st.services[name].WaitReady()
	}
}
