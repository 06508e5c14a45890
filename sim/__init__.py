"""racer's simulator: tracks, car, sensors, race rules and DeepRacer params, as Gymnasium envs.

Importing `sim` registers `racer/DeepRacer-v0`; PyBullet is imported only when an env is made.
"""
ENV_ID = "racer/DeepRacer-v0"

try:
    import gymnasium
except ImportError:  # the car imports sim.observation / sim.actions without gymnasium
    gymnasium = None

if gymnasium is not None and ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="sim.env:DeepRacerEnv")


def parallel_env(**kwargs):
    """A head-to-model race as a PettingZoo ParallelEnv (sim.parallel.RaceParallelEnv): track=, agents=,
    sensors=, race_config=, reward_fns=, mode=, laps=."""
    from sim.parallel import RaceParallelEnv
    return RaceParallelEnv(**kwargs)
