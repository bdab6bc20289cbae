"""Gait-likeness of recorded motion: python scripts/compare_motion.py --clips A.npz B.npz [--discriminator_run RUN].

For each clip (e.g. written by scripts/record_motion.py) prints, as JSON, the joint-angle distance to the
reference clips (mean over joints of the Wasserstein-1 distance between the clip's and the references' joint
angle distributions, rad) and, with ``--discriminator_run`` (an APPO run directory), that run's mean
discriminator score and style reward on the clip's transitions; the reference clips are scored too, as the
yardstick.
"""

import argparse
import glob
import json
import sys

DEFAULT_REFERENCE = "legged_env/robots/go1/motions/trot*.npz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", required=True, help="motion clips (.npz) to score")
    parser.add_argument("--reference", nargs="+", default=None, help=f"reference clips (default {DEFAULT_REFERENCE})")
    parser.add_argument("--discriminator_run", default=None, help="APPO run directory whose discriminator scores")
    args = parser.parse_args()

    import torch

    from legged_rl.cli import PACKAGE_ROOT, resolve_motion_files
    from st_rl.datasets.motion_loader import load_motion
    from st_rl.datasets.motion_metrics import discriminator_scores, joint_angle_distance
    from st_rl.modules import load_policy_from_run
    from st_rl.utils.errors import CheckpointError
    from st_rl.utils.obs_segments import get_obs_slice

    try:
        reference_files = args.reference or sorted(glob.glob(str(PACKAGE_ROOT / DEFAULT_REFERENCE)))
        references = [load_motion(f) for f in resolve_motion_files(reference_files, "--reference")]
        clips = [load_motion(f) for f in args.clips]
        policy = load_policy_from_run(args.discriminator_run) if args.discriminator_run else None
    except (ValueError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if policy is not None and not hasattr(policy, "discriminator"):
        print(f"error: {args.discriminator_run} is not an AMP run (its policy has no discriminator)", file=sys.stderr)
        return 2
    dof = get_obs_slice(references[0].segments, "dof_pos")[0]
    pooled = torch.cat([torch.as_tensor(r.frames) for r in references])
    rows = []
    for i, clip in enumerate([*clips, *references]):
        frames = torch.as_tensor(clip.frames)
        row = {"clip": clip.path, "reference": i >= len(clips), "seconds": round(clip.duration, 2)}
        row["joint_angle_w1_rad"] = joint_angle_distance(frames, pooled, dof)
        if policy is not None:
            row.update(discriminator_scores(policy, frames))
        rows.append(row)
    print(json.dumps(rows, indent=2))
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
