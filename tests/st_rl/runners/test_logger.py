import math

import torch

from st_rl.runners.logger import combine_rank_logs, episode_means


def test_combine_rank_logs_averages_metrics_and_terms_and_concatenates_episodes():
    rank0 = ({"surrogate": 1.0, "kl": 0.02}, {"rew_reach": 4.0}, [1.0, 2.0], [10.0, 20.0])
    rank1 = ({"surrogate": 3.0, "kl": 0.04}, {"rew_reach": 2.0, "rew_other": 5.0}, [3.0], [30.0])
    rank2 = ({"surrogate": 2.0, "kl": 0.03}, {}, [], [])  # no episode ended on this rank
    update_info, episodes, rewards, lengths = combine_rank_logs([rank0, rank1, rank2])
    assert update_info["surrogate"] == 2.0 and math.isclose(update_info["kl"], 0.03)
    assert episodes == {"rew_reach": 3.0, "rew_other": 5.0}  # over the ranks that report the term
    assert rewards == [1.0, 2.0, 3.0] and lengths == [10.0, 20.0, 30.0]


def test_episode_means_skip_steps_without_finished_episodes():
    # An env that logs without host syncs reports every key every step, NaN where no episode ended.
    nan = float("nan")
    steps = [
        {"rew_a": torch.tensor(2.0), "rew_b": torch.tensor(nan)},
        {"rew_a": torch.tensor(nan), "rew_b": torch.tensor(nan)},
        {"rew_a": torch.tensor(4.0), "rew_b": torch.tensor(nan), "level": 1.0},
    ]
    assert episode_means(steps) == {"rew_a": 3.0, "level": 1.0}  # rew_b never had a value
