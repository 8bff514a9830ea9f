/* Map helpers shared by the BPF programs. */
#ifndef SCRY_MAPS_BPF_H
#define SCRY_MAPS_BPF_H

#define SCRY_E2BIG 7 /* errno values, for map update results (no libc headers here) */

/* The value of key, created from init if missing; NULL when the map is full (*err is -SCRY_E2BIG) or,
 * for a map that is not preallocated, the kernel had no memory ready for the entry. Another CPU may
 * create it at the same time: BPF_NOEXIST lets one of them win and both find it after. */
static __always_inline void *scry_lookup_or_insert(void *map, const void *key, const void *init, long *err)
{
	void *value = bpf_map_lookup_elem(map, key);

	if (value)
		return value;
	*err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* The same, where why it failed does not matter. */
static __always_inline void *scry_lookup_or_init(void *map, const void *key, const void *init)
{
	long err;

	return scry_lookup_or_insert(map, key, init, &err);
}

#endif /* SCRY_MAPS_BPF_H */
