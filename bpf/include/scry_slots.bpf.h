/* Per-workload statistics in a per-CPU array indexed by a small slot per cgroup, instead of a hash map
 * keyed by the cgroup id: a hot hook indexes the array with a slot it keeps in a cache of its own (per
 * task or per CPU) and looks cgroup_slots up only to fill that cache. User space takes the slots of
 * dead cgroups back (libcommon's scry/cgroup_slots.h): it deletes the cgroup's entry, makes the caches
 * look their slot up again, zeroes the slot's statistics and queues the slot for reuse.
 *
 * Define SCRY_SLOTS (how many) before including; the object defines its statistics array. User space
 * may size the maps for fewer or more before load (scry/cgroup_slots.h: SizeSlots). */
#ifndef SCRY_SLOTS_BPF_H
#define SCRY_SLOTS_BPF_H

#define SCRY_NO_SLOT 0xffffffffu /* a cgroup without a slot (all taken) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SCRY_SLOTS);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, __u32); /* slot */
} cgroup_slots SEC(".maps");

/* Slots user space took back from dead cgroups (their statistics zeroed); used before fresh ones. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, SCRY_SLOTS);
	__type(value, __u32);
} free_slots SEC(".maps");

/* Who holds a slot: a slot is taken by inserting it here (BPF_NOEXIST is atomic; no atomic
 * fetch-and-add before BPF ISA v3). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SCRY_SLOTS);
	__type(key, __u32); /* slot */
	__type(value, __u64); /* cgroup v2 id */
} slot_owners SEC(".maps");

const volatile __u32 slot_count = SCRY_SLOTS; /* the maps' size */
__u32 next_slot = 0; /* slots never used yet: from about next_slot to slot_count-1 */

/* The slot of a cgroup, given one if it has none; SCRY_NO_SLOT when all are taken. */
static __noinline __u32 scry_slot_of(__u64 cgroup_id)
{
	__u32 *found = bpf_map_lookup_elem(&cgroup_slots, &cgroup_id);
	__u32 slot;

	if (found)
		return *found;
	if (bpf_map_pop_elem(&free_slots, &slot) ||
	    bpf_map_update_elem(&slot_owners, &slot, &cgroup_id, BPF_NOEXIST)) {
		/* A fresh one; other CPUs may race for the same: the one whose insert succeeds has it. */
		int i;

		slot = next_slot;
		for (i = 0; i < 8 && slot < slot_count; i++, slot++)
			if (!bpf_map_update_elem(&slot_owners, &slot, &cgroup_id, BPF_NOEXIST))
				break;
		if (i == 8 || slot >= slot_count)
			return SCRY_NO_SLOT;
		next_slot = slot + 1;
	}
	if (bpf_map_update_elem(&cgroup_slots, &cgroup_id, &slot, BPF_NOEXIST)) {
		/* Another CPU gave it one first: hand ours back. */
		bpf_map_delete_elem(&slot_owners, &slot);
		bpf_map_push_elem(&free_slots, &slot, 0);
		found = bpf_map_lookup_elem(&cgroup_slots, &cgroup_id);
		return found ? *found : SCRY_NO_SLOT;
	}
	return slot;
}

#endif /* SCRY_SLOTS_BPF_H */
