"""LeggedEnv: the batched, functional env core shared by legged tasks.

What lives here: the robot model and its per-env domain randomisation, explicit PD control
with torque limits and motor strength, ``decimation`` physics substeps inside one jitted
``step``, pushes, and the auto-reset that keeps the final critic observation. What a task
adds (``legged_env/tasks/<task>/``): commands, observable quantities, rewards, terminations.

Everything is pure JAX over :class:`State`; ``reset``/``step`` are vmapped over envs and
jitted once each.
"""

import math

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from legged_env.core import symmetry
from legged_env.core.jax_setup import enable_compilation_cache
from legged_env.core.observations import ObsGroup
from legged_env.core.rewards import RewardTerms
from legged_env.core.state import State
from legged_env.errors import ConfigError
from legged_env.robots import get_robot


class LeggedEnv:
    """Base class of legged tasks. Subclasses define the hooks at the bottom of this class.

    Args:
        cfg: the task's fully resolved ``env`` config section (see ``tasks/<task>/config.py``).
        num_envs: number of parallel envs.
        seed: seeds domain randomisation and every env's rng.
        source: where ``cfg`` came from, for error messages.
    """

    reward_functions: dict  # name -> reward function, set by each task class

    def __init__(self, cfg: dict, num_envs: int, seed: int = 0, source: str = "<config>"):
        enable_compilation_cache()
        self.cfg, self.num_envs = cfg, num_envs
        self.robot = get_robot(cfg["robot"])
        self.mj_model = self.build_mj_model()
        self.mj_model.opt.timestep = cfg["sim_dt"]
        self.mj_model.opt.iterations = int(cfg["solver"]["iterations"])
        self.mj_model.opt.ls_iterations = int(cfg["solver"]["ls_iterations"])
        self.decimation = cfg["decimation"]
        self.dt = cfg["sim_dt"] * self.decimation
        self.max_episode_length = int(math.ceil(cfg["episode_length_s"] / self.dt))
        self._init_robot_indices()
        self.rewards = RewardTerms(
            self.reward_functions, cfg["rewards"]["scales"], self.dt, cfg["rewards"], f"env.rewards.scales in {source}"
        )
        shapes = self.quantity_shapes()
        obs_cfg = cfg["observations"]
        self.actor_obs = ObsGroup(obs_cfg["actor"], shapes, f"env.observations.actor in {source}")
        self.critic_obs = ObsGroup(obs_cfg["critic"], shapes, f"env.observations.critic in {source}")
        # Optional AMP observation group (adversarial motion priors): clean quantities, no noise.
        amp_cfg = obs_cfg.get("amp")
        self.amp_obs = ObsGroup(amp_cfg, shapes, f"env.observations.amp in {source}") if amp_cfg else None
        self.noise_level = float(cfg["noise"]["level"]) if cfg["noise"]["enabled"] else 0.0
        self.mjx_model = mjx.put_model(self.mj_model, impl="jax")
        self._template = mjx.make_data(self.mjx_model, impl="jax")
        rng_dr, self._rng = jax.random.split(jax.random.PRNGKey(seed))
        self.model, model_axes, self.dr_params = self._randomize_model(rng_dr)
        # The env lives on the default device at construction (jax.default_device): model and state committed there.
        self.device = next(iter(self.dr_params["friction"].devices()))
        self.model = jax.device_put(self.model, self.device)
        self.reset = jax.jit(jax.vmap(self._reset))
        self.step = jax.jit(jax.vmap(self._step, in_axes=(model_axes, 0, 0)))

    # ---------------------------------------------------------------- construction
    def _init_robot_indices(self):
        m, r = self.mj_model, self.robot

        def ids(kind, names):
            return np.array([mujoco.mj_name2id(m, kind, n) for n in names])

        jids = ids(mujoco.mjtObj.mjOBJ_JOINT, r.JOINT_NAMES)
        self.qpos_idx = jnp.array(m.jnt_qposadr[jids])
        self.qvel_idx = jnp.array(m.jnt_dofadr[jids])
        self.default_joint_pos = jnp.array(r.DEFAULT_JOINT_POS, dtype=jnp.float32)
        self.joint_range = jnp.array(m.jnt_range[jids], dtype=jnp.float32)
        act_ids = [int(np.where(m.actuator_trnid[:, 0] == j)[0][0]) for j in jids]
        self.torque_limits = jnp.array(m.actuator_ctrlrange[act_ids, 1], dtype=jnp.float32)
        self.trunk_geom = int(ids(mujoco.mjtObj.mjOBJ_GEOM, [r.TRUNK_GEOM])[0])
        self.trunk_body = int(ids(mujoco.mjtObj.mjOBJ_BODY, [r.TRUNK_BODY])[0])
        self.foot_geoms = ids(mujoco.mjtObj.mjOBJ_GEOM, r.FOOT_GEOMS)
        self.thigh_geoms = ids(mujoco.mjtObj.mjOBJ_GEOM, r.THIGH_GEOMS)
        self.calf_geoms = ids(mujoco.mjtObj.mjOBJ_GEOM, r.CALF_GEOMS)
        self.floor_geom = int(ids(mujoco.mjtObj.mjOBJ_GEOM, ["floor"])[0])
        # Terrain: world-body geoms that collide (floor, obstacles, walls); their (randomised) friction is a
        # contact's friction.
        self.terrain_geoms = np.flatnonzero((m.geom_bodyid == 0) & (m.geom_conaffinity != 0))
        groups = {
            "trunk": (r.TRUNK_GEOM, *r.HEAD_GEOMS),
            "hip": r.HIP_GEOMS,
            "thigh": r.THIGH_GEOMS,
            "calf": r.CALF_GEOMS,
            "foot": r.FOOT_GEOMS,
        }
        self.contact_group_geoms = {k: ids(mujoco.mjtObj.mjOBJ_GEOM, v) for k, v in groups.items()}
        self.total_mass = float(m.body_subtreemass[self.trunk_body])
        kp, kd = self.cfg["control"]["kp"], self.cfg["control"]["kd"]
        self.kp = jnp.full((len(jids),), kp, dtype=jnp.float32)
        self.kd = jnp.full((len(jids),), kd, dtype=jnp.float32)
        self.action_scale = self.cfg["control"]["action_scale"]
        self.num_actions = len(jids)

    def _randomize_model(self, rng):
        """Samples per-env friction, added trunk mass, trunk CoM offset and joint damping / frictionloss /
        armature (scales of the MJCF's values) into batched model fields.

        Returns ``(model, in_axes, params)``: only the randomised fields carry a leading
        ``(num_envs,)`` axis; ``params`` holds the sampled values for the critic.
        """
        dr, n, mx = self.cfg["domain_rand"], self.num_envs, self.mjx_model
        k1, k2, k3, k4 = jax.random.split(rng, 4)
        friction = jax.random.uniform(k1, (n, 1), minval=dr["friction"][0], maxval=dr["friction"][1])
        added_mass = jax.random.uniform(k2, (n, 1), minval=dr["added_mass"][0], maxval=dr["added_mass"][1])
        com = jax.random.uniform(k3, (n, 3), minval=dr["com_offset"][0], maxval=dr["com_offset"][1])
        # Robot geoms have friction 0.01 and a pair takes the larger value (go1.xml): a contact's friction is the
        # terrain geom's, so every pair a foot (or any body part) makes with floor, box or wall gets this value.
        geom_friction = jnp.broadcast_to(mx.geom_friction, (n, *mx.geom_friction.shape))
        geom_friction = geom_friction.at[:, jnp.array(self.terrain_geoms), 0].set(friction)
        body_mass = (
            jnp.broadcast_to(mx.body_mass, (n, *mx.body_mass.shape)).at[:, self.trunk_body].add(added_mass[:, 0])
        )
        body_ipos = jnp.broadcast_to(mx.body_ipos, (n, *mx.body_ipos.shape)).at[:, self.trunk_body].add(com)
        fields = {"geom_friction": geom_friction, "body_mass": body_mass, "body_ipos": body_ipos}
        for key, name in zip(
            jax.random.split(k4, 3), ("damping", "frictionloss", "armature"), strict=True
        ):  # one scale per env and joint, of the MJCF value
            lo, hi = dr[f"joint_{name}"]
            scale = jax.random.uniform(key, (n, self.num_actions), minval=lo, maxval=hi)
            field = getattr(mx, f"dof_{name}")
            fields[f"dof_{name}"] = jnp.broadcast_to(field, (n, *field.shape)).at[:, self.qvel_idx].multiply(scale)
        model = mx.tree_replace(fields)
        in_axes = jax.tree.map(lambda _: None, mx).tree_replace({k: 0 for k in fields})
        params = {"friction": friction, "added_mass": added_mass, "com_offset": com}
        return model, in_axes, params

    # ---------------------------------------------------------------- public batched API
    def init(self, seed_offset: int = 0) -> State:
        """Returns the first batched State ``(num_envs, ...)``: every env freshly reset."""
        key = jax.random.fold_in(self._rng, seed_offset)
        rngs = jax.random.split(key, self.num_envs)
        state = self.reset(rngs, {**self.dr_params, **self.initial_carry(jax.random.fold_in(key, 1))})
        # Committed to the device like step's outputs: otherwise the first step's inputs differ from the second's
        # (uncommitted vs committed arrays) and the batched step is traced and compiled twice. The device is the
        # one the env was built on (jax.default_device), where its model lives.
        return jax.device_put(state, self.device)

    def step_batched(self, state: State, actions: jax.Array) -> State:
        """Steps every env by one policy step; ``actions`` (num_envs, num_actions)."""
        return self.step(self.model, state, actions)

    # ---------------------------------------------------------------- per-env functions (vmapped)
    def _reset(self, rng: jax.Array, carried: dict) -> State:
        qpos, qvel, info, k_obs = self._reset_parts(rng, carried)
        data = self._template.replace(qpos=qpos, qvel=qvel)
        zeros = self.reward_sums_zero()
        obs, critic, amp = self._observe(qpos, qvel, info, jnp.zeros(len(self.foot_geoms)), k_obs)
        metrics = self._reset_metrics(zeros)
        f = jnp.zeros(())
        return State(data, obs, critic, f, f > 0, f > 0, critic, info, metrics, amp, amp)

    def _reset_parts(self, rng: jax.Array, carried: dict):
        """Fresh qpos (nq,), qvel (nv,), info and a key for the first observation's noise, for one env.

        ``carried``: what a new episode inherits from the last one (the randomised model parameters and
        the task's :meth:`next_episode_carry`, e.g. a curriculum level)."""
        init = self.cfg["init_state"]
        k_yaw, k_q, k_v, k_ms, k_task, k_next, k_obs = jax.random.split(rng, 7)
        yaw = jax.random.uniform(k_yaw, (), minval=init["yaw"][0], maxval=init["yaw"][1])
        quat = jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])
        joint_noise = jax.random.uniform(k_q, (self.num_actions,), minval=-1.0, maxval=1.0) * init["joint_pos_noise"]
        joint_pos = jnp.clip(self.default_joint_pos + joint_noise, self.joint_range[:, 0], self.joint_range[:, 1])
        qpos = self._template.qpos.at[:3].set(jnp.array([0.0, 0.0, init["base_height"]]))
        qpos = qpos.at[3:7].set(quat).at[self.qpos_idx].set(joint_pos)
        base_vel = jax.random.uniform(k_v, (6,), minval=-1.0, maxval=1.0) * init["base_vel_noise"]
        qvel = jnp.zeros_like(self._template.qvel).at[:6].set(base_vel)
        ms = self.cfg["domain_rand"]["motor_strength"]
        info = {
            "rng": k_next,
            "step": jnp.zeros((), jnp.int32),
            "motor_strength": jax.random.uniform(k_ms, (self.num_actions,), minval=ms[0], maxval=ms[1]),
            "last_actions": jnp.zeros(self.num_actions),
            "last_dof_vel": jnp.zeros(self.num_actions),
            "episode_sums": self.reward_sums_zero(),
            **carried,
        }
        info.update(self.reset_task_info(k_task, info))
        return qpos, qvel, info, k_obs

    def _physics(self, model, data, target: jax.Array, strength: jax.Array):
        """``decimation`` substeps of PD control + mjx.step. Returns (data, last torques (12,), mean power ())."""

        def substep(carry, _):
            data, power = carry
            q, qd = data.qpos[self.qpos_idx], data.qvel[self.qvel_idx]
            tau = strength * (self.kp * (target - q) - self.kd * qd)
            tau = jnp.clip(tau, -self.torque_limits, self.torque_limits)
            data = mjx.step(model, data.replace(ctrl=tau))
            return (data, power + jnp.sum(jnp.abs(tau * qd))), tau

        (data, power), taus = jax.lax.scan(substep, (data, jnp.zeros(())), None, length=self.decimation)
        # mjx.step leaves poses (geom_xpos, ...) at the start of its last substep; recompute them for the
        # integrated qpos so contacts and terminations see the state the observation describes.
        data = mjx.kinematics(model, data)
        return data, taus[-1], power / self.decimation

    def _push(self, data, info):
        """Every ``push_interval_s``, adds a random horizontal velocity kick to the base."""
        dr = self.cfg["domain_rand"]
        interval = max(int(round(dr["push_interval_s"] / self.dt)), 1)
        rng, key = jax.random.split(info["rng"])
        kick = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0) * dr["push_vel_xy"]
        do_push = (info["step"] % interval == 0) & (dr["push_vel_xy"] > 0)
        qvel = data.qvel.at[:2].add(jnp.where(do_push, kick, 0.0))
        return data.replace(qvel=qvel), {**info, "rng": rng}

    def _step(self, model, state: State, action: jax.Array) -> State:
        clip = self.cfg["control"]["clip_actions"]
        action = jnp.clip(action, -clip, clip)
        info = state.info
        target = self.default_joint_pos + action * self.action_scale
        model = self.episode_model(model, info, state.data.qpos)
        data, tau, power = self._physics(model, state.data, target, info["motor_strength"])
        info = {**info, "step": info["step"] + 1}
        q = self.quantities(data, info, action, tau, power)
        terminated = self.terminated(q)
        time_out = ((info["step"] >= self.max_episode_length) | self.truncated(q)) & ~terminated
        done = terminated | time_out
        terms = self.rewards({**q, "terminated": terminated})
        reward = self.rewards.total(terms, self.cfg["rewards"]["only_positive_rewards"])
        sums = {k: info["episode_sums"][k] + v for k, v in terms.items()}
        info = self.update_task_info({**info, "episode_sums": sums}, q)
        data, info = self._push(data, info)
        rng, k_obs, k_reset = jax.random.split(info["rng"], 3)
        info = {**info, "rng": rng, "last_actions": action, "last_dof_vel": q["dof_vel"]}
        obs, critic, amp = self._observe(data.qpos, data.qvel, info, q["foot_contacts"], k_obs)
        metrics = self.step_metrics(q, sums, power)
        # Auto-reset: envs that are done restart now; their final critic obs is kept.
        carried = {**{k: info[k] for k in self.dr_params}, **self.next_episode_carry(info, q, terminated, time_out)}
        r_qpos, r_qvel, r_info, _ = self._reset_parts(k_reset, carried)
        r_obs, r_critic, r_amp = self._observe(r_qpos, r_qvel, r_info, jnp.zeros_like(q["foot_contacts"]), k_obs)

        def pick(reset_value, value):
            return jnp.where(done, reset_value, value)

        data = data.replace(
            qpos=pick(r_qpos, data.qpos),
            qvel=pick(r_qvel, data.qvel),
            qacc_warmstart=pick(jnp.zeros_like(data.qacc_warmstart), data.qacc_warmstart),
            time=pick(0.0, data.time),
        )
        info = jax.tree.map(pick, r_info, info)
        return State(
            data,
            pick(r_obs, obs),
            pick(r_critic, critic),
            reward,
            done,
            time_out,
            critic,
            info,
            metrics,
            pick(r_amp, amp),
            amp,
        )

    def _observe(self, qpos, qvel, info, foot_contacts, rng):
        """(actor obs, critic obs, AMP obs ``(0,)`` when the task has no AMP group) of one env."""
        q = self.obs_quantities(qpos, qvel, info, foot_contacts)
        amp = self.amp_obs(q) if self.amp_obs is not None else jnp.zeros(0)
        return self.actor_obs(self.actor_quantities(q, info), rng, self.noise_level), self.critic_obs(q), amp

    def actor_quantities(self, q: dict, info: dict) -> dict:
        """The quantities as the robot's sensors report them to the actor (e.g. late); the critic and AMP groups
        read ``q``. Default: ``q``."""
        return q

    def reward_sums_zero(self) -> dict:
        return {name: jnp.zeros(()) for name in self.rewards.names}

    def _reset_metrics(self, sums: dict) -> dict:
        zeros3 = jnp.zeros(3)
        return {"episode_sums": sums, "lin_vel": zeros3, "ang_vel": zeros3, "commands": zeros3, "power": jnp.zeros(())}

    def step_metrics(self, q: dict, sums: dict, power: jax.Array) -> dict:
        """Clean per-step values before any reset, for logging and play metrics."""
        return {
            "episode_sums": sums,
            "lin_vel": q["base_lin_vel"],
            "ang_vel": q["base_ang_vel"],
            "commands": q["commands"],
            "power": power,
        }

    # ---------------------------------------------------------------- symmetry
    def mirror_spec(self) -> dict:
        """The left-right mirror (y -> -y) of every observation group and of the actions, each ``(perm, sign)``
        numpy arrays with ``mirrored = x[..., perm] * sign`` (:mod:`legged_env.core.symmetry`): ``{"actor",
        "critic", "actions"}`` and ``"amp"`` (None without an AMP group).

        Raises:
            ConfigError: an observed quantity has no mirror (named, with its group), or the robot is not symmetric.
        """
        mirrors = self.quantity_mirrors()
        actions = self.action_mirror()
        symmetry.check(actions, self.num_actions, "the actions")
        return {
            "actor": self.actor_obs.mirror(mirrors),
            "critic": self.critic_obs.mirror(mirrors),
            "amp": self.amp_obs.mirror(mirrors) if self.amp_obs is not None else None,
            "actions": actions,
        }

    def quantity_mirrors(self) -> dict:
        """``name -> Mirror`` of every observable quantity (flattened), or a string saying why a quantity has
        none for this config. Default: none declared."""
        return {}

    def action_mirror(self) -> symmetry.Mirror:
        """``(perm, sign)`` of the ``(num_actions,)`` action vector; the task declares it with its robot."""
        raise ConfigError(f"{type(self).__name__} declares no left-right mirror of its actions")

    # ---------------------------------------------------------------- task hooks (optional ones have defaults)
    def build_mj_model(self) -> mujoco.MjModel:
        """The MuJoCo model of the training physics (:meth:`model_xml`)."""
        return mujoco.MjModel.from_xml_string(self.model_xml())

    def model_xml(self) -> str:
        """MJCF text of the training physics: the robot's MJCF (a terrain adds its geoms) with MJX's contact cap
        ``env.solver.max_contact_points`` (per contact dimension, the deepest contacts are kept; plain MuJoCo
        ignores it)."""
        xml = self.robot.XML_PATH.read_text()
        cap = int(self.cfg["solver"]["max_contact_points"])
        if "<worldbody>" not in xml:
            raise ConfigError(f"{self.robot.XML_PATH} has no <worldbody>")
        custom = f'<custom><numeric name="max_contact_points" data="{cap}"/></custom>\n'
        return xml.replace("<worldbody>", custom + "  <worldbody>", 1)

    def initial_carry(self, rng: jax.Array) -> dict:
        """Batched ``(num_envs, ...)`` entries the first episodes start with (see :meth:`next_episode_carry`)."""
        return {}

    def next_episode_carry(self, info: dict, q: dict, terminated: jax.Array, time_out: jax.Array) -> dict:
        """Entries of ``info`` the next episode of this env inherits (e.g. a curriculum level moved by the
        outcome of this one); used only when the episode ends. Keys must match :meth:`initial_carry`."""
        return {}

    def episode_model(self, model, info: dict, qpos: jax.Array):
        """The physics model of this env's policy step from its episode ``info`` and pose ``qpos`` (e.g. its own
        obstacle positions); default unchanged."""
        return model

    def mj_model_of(self, state: State, index: int) -> mujoco.MjModel:
        """A MuJoCo model of env ``index`` in batched ``state`` (for rendering); default the shared one."""
        return self.mj_model

    def truncated(self, q: dict) -> jax.Array:
        """``()`` bool: the episode ends without failure before its time limit (e.g. a goal reached)."""
        return jnp.zeros((), dtype=bool)

    def quantity_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every observable quantity, by name."""
        raise NotImplementedError

    def reset_task_info(self, rng: jax.Array, info: dict) -> dict:
        """Task entries of ``info`` for a fresh episode (e.g. commands)."""
        raise NotImplementedError

    def quantities(self, data, info: dict, action: jax.Array, tau: jax.Array, power: jax.Array) -> dict:
        """Everything rewards and terminations read after a step, by name."""
        raise NotImplementedError

    def terminated(self, q: dict) -> jax.Array:
        """``()`` bool: the episode ends for a reason other than time-out."""
        raise NotImplementedError

    def update_task_info(self, info: dict, q: dict) -> dict:
        """Task bookkeeping after a step (command resampling, air time...)."""
        raise NotImplementedError

    def obs_quantities(self, qpos, qvel, info: dict, foot_contacts) -> dict:
        """Observable quantities from the generalised state and info (also used at reset)."""
        raise NotImplementedError
