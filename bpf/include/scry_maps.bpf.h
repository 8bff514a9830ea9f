/* Map helpers shared by the BPF programs. */
#ifndef SCRY_MAPS_BPF_H
#define SCRY_MAPS_BPF_H

/* The value of key, created from init if missing; NULL only when the map is full. Another CPU may
 * create it at the same time: BPF_NOEXIST lets one of them win and both find it after. */
static __always_inline void *scry_lookup_or_init(void *map, const void *key, const void *init)
{
	void *value = bpf_map_lookup_elem(map, key);

	if (value)
		return value;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif /* SCRY_MAPS_BPF_H */
