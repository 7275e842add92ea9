"""``python -m medsift ...`` runs the CLI; ``torchrun --nproc_per_node=N -m medsift train ...`` trains with DDP."""

from medsift.cli import main

if __name__ == "__main__":
    main()
