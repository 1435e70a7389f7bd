package redisstore

import "testing"

func TestParseLeasePart(t *testing.T) {
	lease := LeaseID("0193a1b2")
	if id := LeasePart(lease, 7, 1234); id != "lease:0193a1b2/7/1234" {
		t.Fatalf("LeasePart = %q", id)
	}
	for _, tc := range []struct {
		id     string
		lease  string
		amount int64
		ok     bool
	}{
		{LeasePart(lease, 7, 1234), lease, 1234, true},
		{LeasePart(lease, 0, 0), lease, 0, true},
		{"lease:x/1/999999999999999999", "lease:x", 999999999999999999, true},
		{"lease:x/1/9223372036854775807", "", 0, false},   // beyond what the scripts read
		{"0193a1b2", "", 0, false},                        // a request id
		{"req/1/5", "", 0, false},                         // not a lease
		{lease, "", 0, false},                             // the lease itself
		{lease + "/1", "", 0, false},                      // no amount
		{lease + "/1/-5", "", 0, false},                   // negative
		{lease + "/1/+5", "", 0, false},                   // signed
		{lease + "/x/5", "", 0, false},                    // n not a number
		{"lease:a/b/1/5", "", 0, false},                   // '/' in the lease id
		{"lease:/1/5", "", 0, false},                      // empty lease id
		{lease + "/1/99999999999999999999", "", 0, false}, // beyond int64
	} {
		l, a, ok := ParseLeasePart(tc.id)
		if l != tc.lease || a != tc.amount || ok != tc.ok {
			t.Errorf("ParseLeasePart(%q) = %q, %d, %v; want %q, %d, %v", tc.id, l, a, ok, tc.lease, tc.amount, tc.ok)
		}
	}
	if !IsLeaseID(lease) || IsLeaseID("req-1") {
		t.Error("IsLeaseID")
	}
}
