package redisstore

import "strings"

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash tag
// (the bytes between the first '{' and the next '}', if not empty), or of the
// whole key, mod 16384. Counter keys always carry their scope as the tag
// (scope.CounterKey), and companion keys keep it, so a counter and its
// companions share a slot.
func slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % clusterSlots)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), what Redis
// Cluster uses for key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// groups partitions the indexes of keys into the sets one script call may
// touch: every index on a single node; one set per hash slot on Redis
// Cluster, where a script's keys must share a slot. Sets are ordered by
// their first index, so "the first counter that fails" follows the
// caller's order as far as slot grouping allows.
func (s *Store) groups(keys []string) [][]int {
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	if !s.cluster {
		return [][]int{all}
	}
	bySlot := map[int][]int{}
	var order []int // slots in order of first appearance
	for i, k := range keys {
		sl := slot(k)
		if _, ok := bySlot[sl]; !ok {
			order = append(order, sl)
		}
		bySlot[sl] = append(bySlot[sl], i)
	}
	out := make([][]int, 0, len(order))
	for _, sl := range order {
		out = append(out, bySlot[sl])
	}
	return out
}
