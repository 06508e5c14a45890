"""racer's simulator: tracks, car, sensors, race rules and DeepRacer params, as Gymnasium envs.

Importing `sim` registers `racer/DeepRacer-v0`; PyBullet is imported only when an env is made.
"""
import gymnasium

ENV_ID = "racer/DeepRacer-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="sim.env:DeepRacerEnv")
