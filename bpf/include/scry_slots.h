/* Shared by scry_slots.bpf.h and user space. */
#ifndef SCRY_SLOTS_H
#define SCRY_SLOTS_H

#define SCRY_NO_SLOT 0xffffffffu /* a cgroup without a slot (all taken) */

#endif /* SCRY_SLOTS_H */
