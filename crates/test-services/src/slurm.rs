//! A single-host Slurm cluster (munged, slurmctld, slurmd) on loopback.
