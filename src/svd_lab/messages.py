"""What a learner must read to succeed, in English and Simplified Chinese: one catalogue, keyed by message.

:func:`t` formats a message in the current language. The language is, first, what :func:`set_language` set (each
course notebook calls it with its ``language`` parameter: ``"en"`` in ``notebooks/``, ``"zh-CN"`` in
``notebooks/zh-CN/``, where the build writes it -- the one line in which the two editions' code cells differ), else
the environment variable ``SVD_LAB_LANG`` (for ``svd-lab`` itself: ``SVD_LAB_LANG=zh-CN svd-lab doctor``), else
English. Exercise hints are keyed by the check's name (``hint.<name>``), so a notebook's code cell holds no text to
translate.

What is translated: exercise verdicts and hints, the doctor's column names, summary and fix lines, the profile line
(which model runs and why), the out-of-memory advice, and the download errors a reader meets first (network,
gated repository, offline). Values, paths, commands and figure labels stay as they are.
"""

from __future__ import annotations

import os
import string

LANGUAGES = ("en", "zh-CN")
ENV = "SVD_LAB_LANG"
_ALIASES = {"en": "en", "en-us": "en", "en-gb": "en", "english": "en", "zh": "zh-CN", "zh-cn": "zh-CN",
            "zh_cn": "zh-CN", "zh-hans": "zh-CN", "zh_hans": "zh-CN", "chinese": "zh-CN"}
_current: str | None = None


def normalise(language: str) -> str:
    """'zh', 'zh_CN', 'zh-Hans', ... -> 'zh-CN'; 'en*' -> 'en'; anything else is a ValueError naming the choices."""
    key = str(language).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("en"):
        return "en"
    raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")


def set_language(language: str | None) -> str:
    """Use ``language`` from now on in this process (None: back to ``SVD_LAB_LANG`` or English); returns it."""
    global _current
    _current = None if language is None else normalise(language)
    return current()


def current() -> str:
    if _current is not None:
        return _current
    value = os.environ.get(ENV, "").strip()
    try:
        return normalise(value) if value else "en"
    except ValueError:
        return "en"          # a stray value must not break every message: English, as documented


def t(key: str, **values) -> str:
    """The message ``key`` in the current language, formatted with ``values`` (str.format fields)."""
    entry = CATALOGUE[key]
    return entry.get(current(), entry["en"]).format(**values)


def has(key: str) -> bool:
    return key in CATALOGUE


def fields(text: str) -> set[str]:
    """The str.format fields of a template (the test checks both languages use the same ones)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


CATALOGUE: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------------------------------- exercises
    "exercise.correct": {"en": "[{name}] correct", "zh-CN": "[{name}] 正确"},
    "exercise.not_yet": {"en": "[{name}] not yet{why}\n  hint: {hint}",
                         "zh-CN": "[{name}] 还不对{why}\n  提示：{hint}"},
    "exercise.why": {"en": ": {reason}", "zh-CN": "：{reason}"},
    "exercise.no_answer": {"en": "no answer yet (replace None above)", "zh-CN": "还没有答案（请替换上面的 None）"},
    "exercise.raised": {"en": "checking your answer raised {error}", "zh-CN": "检查你的答案时出错：{error}"},
    "hint.weights_in_memory": {
        "en": "parameters = FULL_PARAMETER_COUNTS['unet'] + ['vae'] + ['image_encoder']; GB = parameters x 4 / 1e9 in "
              "float32, x 2 / 1e9 in float16; answer a dict {{'fp32': ..., 'fp16': ...}}",
        "zh-CN": "参数量 = FULL_PARAMETER_COUNTS['unet'] + ['vae'] + ['image_encoder']；"
                 "GB = 参数量 x 4 / 1e9（float32），x 2 / 1e9（float16）；答案是一个字典 {{'fp32': ..., 'fp16': ...}}"},
    "hint.latent_video": {
        "en": "the VAE halves height and width once per down block after the first: factor 2 ** "
              "(len(block_out_channels) - 1); channels = latent_channels; the frames stay; compression = "
              "(frames x 3 x height x width) / (product of the latent shape)",
        "zh-CN": "VAE 在第一个下采样块之后的每个块都把高和宽减半：缩小倍数 2 ** (len(block_out_channels) - 1)；"
                 "通道数 = latent_channels；帧数不变；压缩比 = (帧数 x 3 x 高 x 宽) / (潜变量形状各维之积)"},
    "hint.noise_it": {"en": "x = x0 + sigma * n with n = torch.randn(...) of the same shape (add it to data_points)",
                      "zh-CN": "x = x0 + sigma * n，其中 n = torch.randn(...)，形状相同（加到 data_points 上）"},
    "hint.tokens_patch_t2": {"en": "tokens = (frames / patch_t) x (height / patch) x (width / patch)",
                             "zh-CN": "token 数 = (frames / patch_t) x (height / patch) x (width / patch)"},
    "hint.adaln_not_zero": {"en": "the gates come from block.adaLN_modulation[-1]; its weight is zero after "
                                  "construction",
                            "zh-CN": "门控值来自 block.adaLN_modulation[-1]；它的权重在构建后为零"},
    "hint.karras_formula": {
        "en": "sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i = 0..N-1; "
              "count the levels below 1 for rho = 7 and rho = 1; "
              "answer (levels with rho = 7, {{7: count, 1: count}}, letter)",
        "zh-CN": "sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho，"
                 "其中 i = 0..N-1；分别数出 rho = 7 和 rho = 1 时小于 1 的噪声水平个数；"
                 "答案为 (rho = 7 时的各噪声水平, {{7: 个数, 1: 个数}}, 字母)"},
    "hint.edm_scalars": {"en": "with sigma = sigma_d every sigma^2 + sigma_d^2 is 2 sigma_d^2",
                         "zh-CN": "当 sigma = sigma_d 时，每个 sigma^2 + sigma_d^2 都等于 2 sigma_d^2"},
    "hint.few_steps": {
        "en": "loop n over 1, 2, 3: model.generate(sweep_set.frames[:, 0], sweep_set.speed_bucket, seed=seed, "
              "settings=SamplingSettings(steps=n, guidance_min=1.0, guidance_max=1.0)), then "
              "physics.score_videos(...).presence; look at the levels of a 2-step schedule to choose the sentence",
        "zh-CN": "让 n 依次取 1、2、3：model.generate(sweep_set.frames[:, 0], sweep_set.speed_bucket, seed=seed, "
                 "settings=SamplingSettings(steps=n, guidance_min=1.0, guidance_max=1.0))，再取 "
                 "physics.score_videos(...).presence；看看 2 步调度的各个噪声水平，再选句子"},
    "hint.guidance_by_hand": {
        "en": "F = F_uncond + s_t (F_cond - F_uncond), with s_t broadcast over batch, channels and pixels: view the "
              "scales as (1, T, 1, 1, 1)",
        "zh-CN": "F = F_uncond + s_t (F_cond - F_uncond)，s_t 要在批次、通道和像素上广播：把尺度 view 成 (1, T, 1, 1, "
                 "1)"},
    "hint.fps_ratio": {
        "en": "frames per second = fps_id + 1, so the predicted ratio is (6 + 1) / (12 + 1); the measured one is "
              "fps_motion[12] / fps_motion[6]; then compare fps_motion[f] with requested_step(191, f) for each f. "
              "Answer (prediction, measured, letter)",
        "zh-CN": "每秒帧数 = fps_id + 1，所以预测的比值是 (6 + 1) / (12 + 1)；测得的比值是 fps_motion[12] / "
                 "fps_motion[6]；再对每个 f 比较 fps_motion[f] 与 requested_step(191, f)。答案为 (预测, 测量, 字母)"},
    "hint.speed_asked": {
        "en": "the rule is proportional to the bucket: bucket = target_step / requested_step(255, 6) * 255, rounded; "
              "generate with motion_bucket_id=bucket, fps_id=6 and answer (bucket, measured_step(video))",
        "zh-CN": "规则与运动桶成正比：bucket = target_step / requested_step(255, 6) * 255，取整；用 "
                 "motion_bucket_id=bucket、fps_id=6 生成视频，答案为 (bucket, measured_step(video))"},
    "hint.fast_rocket": {"en": "motion_bucket_id is the speed the model was trained to produce: go well above 64",
                         "zh-CN": "motion_bucket_id 就是模型被训练去产生的速度：取一个远大于 64 的值"},
    "hint.frames_written": {"en": "print(repr(sum([1 / 7] * 21)), repr(sum([1 / 8] * 16))): which one is exact? "
                                  "Answer ({{(21, 7): frames, (16, 8): frames}}, letter)",
                            "zh-CN": "print(repr(sum([1 / 7] * 21)), repr(sum([1 / 8] * 16)))：哪一个是精确的？"
                                     "答案为 ({{(21, 7): 帧数, (16, 8): 帧数}}, 字母)"},
    "hint.full_ball_gif": {
        "en": "the library's Video.save_gif (e.g. ball_video.save_gif(path)) writes every frame; moviepy's stops early",
        "zh-CN": "库中的 Video.save_gif（例如 ball_video.save_gif(path)）会写出每一帧；moviepy 的写法会提前停下"},
    "hint.direction": {"en": "signed_motion(video)[0] is + when the content moves left; compare its size with 0.2 "
                             "first",
                       "zh-CN": "内容向左移动时 signed_motion(video)[0] 为正；先把它的大小与 0.2 比较"},
    "hint.adapter_parameters": {"en": "rank * (in_features + out_features) per linear layer, rank * (in_channels * "
                                      "taps + out_channels) per convolution, summed",
                                "zh-CN": "线性层每层 rank * (in_features + out_features)，卷积层每层 rank * "
                                         "(in_channels * 卷积核元素数 + out_channels)，再求和"},
    "hint.fewest_steps": {"en": "for each objective, the first n in step_counts with table[(objective, n)].presence "
                                "at least bar, else None",
                          "zh-CN": "对每种训练目标，取 step_counts 中第一个使 table[(objective, n)].presence "
                                   "不小于 bar 的 n，都不满足时为 None"},
    "hint.velocity_target": {"en": "x_t moves from x0 (t = 0) to noise (t = 1) in a straight line: its velocity is "
                                   "the difference of the two ends",
                             "zh-CN": "x_t 沿直线从 x0（t = 0）走到 noise（t = 1）：它的速度就是两端之差"},
    "hint.token_ratio": {"en": "tokens_of(frames, height, width, 8) / tokens_of(frames, height, width, 16): the "
                               "spatial factor divides both height and width",
                         "zh-CN": "tokens_of(frames, height, width, 8) / tokens_of(frames, height, width, 16)：空间因子"
                                  "同时作用于高和宽"},
    # ------------------------------------------------------------------------------------- the doctor
    "doctor.title": {"en": "svd-lab doctor", "zh-CN": "svd-lab 环境体检"},
    "doctor.check": {"en": "check", "zh-CN": "检查项"},
    "doctor.status": {"en": "status", "zh-CN": "状态"},
    "doctor.value": {"en": "value", "zh-CN": "结果"},
    "doctor.fix": {"en": "fix", "zh-CN": "修复方法"},
    "doctor.fix_arrow": {"en": "  -> fix: {fix}", "zh-CN": "  -> 修复：{fix}"},
    "doctor.advice": {"en": "Advice", "zh-CN": "建议"},
    "doctor.all_ok": {"en": "All required checks passed.", "zh-CN": "所有必需的检查都通过了。"},
    "doctor.failed": {"en": "{count} required check(s) failed: see the 'fix' notes above.",
                      "zh-CN": "有 {count} 项必需的检查未通过：见上面的修复方法。"},
    "fix.python": {"en": "use Python >= {version} (conda: environment.yml)",
                   "zh-CN": "请使用 Python >= {version}（conda：environment.yml）"},
    "fix.torch": {"en": "make setup (CPU) or `pip install torch` (CUDA build, see README)",
                  "zh-CN": "make setup（CPU），或 `pip install torch`（CUDA 版本，见 README.zh-CN.md）"},
    "fix.devices": {"en": "for real checkpoints use a CUDA GPU with >= 16 GB (README: 'Using a GPU')",
                    "zh-CN": "要运行真实检查点，请使用显存 >= 16 GB 的 CUDA GPU（README.zh-CN.md：“使用 GPU”）"},
    "fix.ascend": {"en": "on ModelArts pick a GPU flavour (V100, T4, A100) with a CUDA image: docs/modelarts.md",
                   "zh-CN": "在 ModelArts 上请选择带 CUDA 镜像的 GPU 规格（V100、T4、A100）：docs/zh-CN/modelarts.md"},
    "fix.sources": {
        "en": "the mirror: export HF_ENDPOINT={mirror} (or svd-lab download NAME --endpoint {mirror}); ModelScope: "
              "svd-lab download {names} --source modelscope; on ModelArts, from your OBS bucket: svd-lab download NAME "
              "--from obs://bucket/path (docs/modelarts.md). Needed only to download real checkpoints: the course runs "
              "without them",
        "zh-CN": "使用镜像：export HF_ENDPOINT={mirror}（或 svd-lab download NAME --endpoint {mirror}）；ModelScope："
                 "svd-lab download {names} --source modelscope；在 ModelArts 上从你的 OBS 桶复制：svd-lab download "
                 "NAME "
                 "--from obs://bucket/path（docs/zh-CN/modelarts.md）。只有下载真实检查点时才需要：课程本身不需要它们"},
    "fix.disk": {"en": "free space: an fp16 checkpoint needs ~4.5 GB, an sgm file ~9.6 GB",
                 "zh-CN": "请腾出磁盘空间：一个 fp16 检查点约需 4.5 GB，一个 sgm 文件约需 9.6 GB"},
    "fix.ffmpeg": {"en": "pip install imageio-ffmpeg (it bundles ffmpeg), or point IMAGEIO_FFMPEG_EXE at a working "
                         "ffmpeg binary",
                   "zh-CN": "pip install imageio-ffmpeg（它自带 ffmpeg），或把 IMAGEIO_FFMPEG_EXE 指向一个可用的 "
                            "ffmpeg 程序"},
    "fix.library": {"en": "pip install {dist}  (or make setup)", "zh-CN": "pip install {dist}（或 make setup）"},
    "fix.moviepy": {"en": "pip install 'moviepy>=2.1,<3'", "zh-CN": "pip install 'moviepy>=2.1,<3'（课程使用 moviepy "
                                                                    "2.x 的 API）"},
    "fix.kernel": {"en": "svd-lab kernel install --sys-prefix   (or make kernel)",
                   "zh-CN": "svd-lab kernel install --sys-prefix（或 make kernel）"},
    "fix.checkpoints": {"en": "svd-lab models; svd-lab download svd  (needed only for the full profile)",
                        "zh-CN": "svd-lab models；svd-lab download svd（只有 full 配置档才需要）"},
    # ------------------------------------------------------------------------------------- the profile line
    "profile.line": {"en": "profile {profile}: {reason}", "zh-CN": "配置档 {profile}：{reason}"},
    "profile.what.small": {"en": "the small SVD trained by svd-lab", "zh-CN": "svd-lab 训练的小型 SVD"},
    "profile.what.tiny": {"en": "random weights", "zh-CN": "随机权重"},
    "profile.requested": {"en": "{profile} profile requested "
                                "({what})", "zh-CN": "按要求使用 {profile} 配置档（{what}）"},
    "profile.checkpoint": {"en": "checkpoint {path}", "zh-CN": "检查点 {path}"},
    "profile.local": {"en": "local checkpoint {path}", "zh-CN": "本地检查点 {path}"},
    "profile.no_local": {
        "en": "no local {version} checkpoint: running the {profile} profile ({what}); `svd-lab download {version}` for "
              "the real model",
        "zh-CN": "本地没有 {version} 检查点：运行 {profile} 配置档（{what}）；要用真实模型请运行 `svd-lab download "
                 "{version}`"},
    "profile.found_on_cpu": {
        "en": "{names} found, but this is a CPU: running the {profile} profile ({what}; full size takes hours here; "
              "ask "
              "for it with --profile full --yes)",
        "zh-CN": "找到了 {names}，但这是 CPU：运行 {profile} 配置档（{what}；全尺寸模型在这里要跑几个小时；"
                 "确实需要时请用 --profile full --yes）"},
    "profile.checkpoint_on_cpu": {
        "en": "{version} checkpoint found, but this is a CPU: running the {profile} profile ({what}; full size takes "
              "hours here; ask for it with --profile full --yes)",
        "zh-CN": "找到了 {version} 检查点，但这是 CPU：运行 {profile} 配置档（{what}；全尺寸模型在这里要跑几个小时；"
                 "确实需要时请用 --profile full --yes）"},
    "profile.auto_small": {"en": "; version auto -> {version} (the {profile} model has svd's shape)",
                           "zh-CN": "；version auto -> {version}（{profile} 模型的形状与 svd 相同）"},
    "profile.auto_full": {"en": "version auto -> {version} (the first of {order} present here{where}); local "
                                "checkpoint {path}",
                          "zh-CN": "version auto -> {version}（按 {order} 的顺序，这里找到的第一个{where}）；本地检查点"
                                   " {path}"},
    "profile.auto_fits": {"en": ", fits {judged}", "zh-CN": "，可放下：{judged}"},
    "profile.auto_none_fit_full": {
        "en": "version auto -> {version}, although none present is expected to fit ({judged}); local checkpoint {path}",
        "zh-CN": "version auto -> {version}，尽管这里没有一个预计能放下（{judged}）；本地检查点 {path}"},
    "profile.auto_no_local": {
        "en": "no local SVD checkpoint ({versions}): running the {profile} profile ({what}); `svd-lab download svd_xt` "
              "(or svd) for the real model",
        "zh-CN": "本地没有 SVD 检查点（{versions}）：运行 {profile} 配置档（{what}）；要用真实模型请运行 "
                 "`svd-lab download svd_xt`（或 svd）"},
    "profile.auto_none_fit": {
        "en": "{names} found, but none is expected to fit ({judged}): running the {profile} profile ({what}); free GPU "
              "memory, or ask for one with --version and --profile full",
        "zh-CN": "找到了 {names}，但预计没有一个能放下（{judged}）：运行 {profile} 配置档（{what}）；请释放显存，"
                 "或用 --version 和 --profile full 指定一个"},
    # ------------------------------------------------------------------------------------- out of memory
    "oom.failed": {
        "en": "out of memory while {stage} on {device} even after retrying with decoding_t {decoding_t}, cpu offload "
              "{offload} and forward chunking ({message}); settings that should fit: {advice}",
        "zh-CN": "在 {device} 上{stage}时显存不足，即使已用 decoding_t {decoding_t}、CPU offload {offload} 和 forward "
                 "chunking 重试（{message}）；预计能放下的设置：{advice}"},
    "oom.stage.sampling": {"en": "sampling", "zh-CN": "采样"},
    "oom.stage.decoding": {"en": "decoding", "zh-CN": "解码"},
    "oom.no_vram_advice": {"en": "fewer --frames, a smaller --width/--height, or --decoding-t 1 (this device has no "
                                 "separate GPU memory: close other programs)",
                           "zh-CN": "减少 --frames、缩小 --width/--height，或使用 --decoding-t 1（此设备没有独立显存："
                                    "请关闭其他程序）"},
    "oom.retry_note": {"en": "note: ran out of memory while {stage}; retried with {after}",
                       "zh-CN": "注意：{stage}时显存不足；已改用 {after} 重试"},
    # ------------------------------------------------------------------------------------- downloads
    "download.network": {
        "en": "could not download from {endpoint} ({reason}).{partial}\n"
              "  Check your connection or proxy (HTTPS_PROXY), then run the same command again: it resumes.\n"
              "  In mainland China the hub is blocked: use the mirror with --endpoint {mirror} "
              "(or export HF_ENDPOINT={mirror}); {modelscope}.\n"
              "  On Huawei ModelArts, copy the files from OBS instead: svd-lab download {name} --from "
              "obs://bucket/path",
        "zh-CN": "无法从 {endpoint} 下载（{reason}）。{partial}\n"
                 "  请检查网络连接或代理（HTTPS_PROXY），然后再次运行同一条命令：它会从断点继续。\n"
                 "  在中国大陆无法访问 Hugging Face：请用镜像 --endpoint {mirror}"
                 "（或 export HF_ENDPOINT={mirror}）；{modelscope}。\n"
                 "  在华为 ModelArts 上，可以改为从 OBS 复制文件：svd-lab download {name} --from obs://bucket/path"},
    "download.modelscope": {"en": "or download it from ModelScope: svd-lab download {name} --source modelscope",
                            "zh-CN": "或者从 ModelScope 下载：svd-lab download {name} --source modelscope"},
    "download.modelscope_other": {
        "en": "ModelScope has a copy of {have} only (svd-lab download {first} --source modelscope)",
        "zh-CN": "ModelScope 只有 {have} 的副本（svd-lab download {first} --source modelscope）"},
    "download.offline": {
        "en": "offline mode is on (HF_HUB_OFFLINE=1) and {name} is not complete locally: unset HF_HUB_OFFLINE to "
              "download it",
        "zh-CN": "离线模式已开启（HF_HUB_OFFLINE=1），而本地的 {name} 不完整：取消 HF_HUB_OFFLINE 后再下载"},
    "download.no_revision": {
        "en": "revision {revision} does not exist in {repo} on {endpoint}: use --revision main or a commit hash from "
              "{url}/commits/main",
        "zh-CN": "{endpoint} 上的 {repo} 中没有版本 {revision}：请使用 --revision main，或 {url}/commits/main 中的"
                 "某个提交哈希"},
    "download.missing_file": {"en": "a file of {name} is missing from {repo} on {endpoint} ({detail})",
                              "zh-CN": "{endpoint} 上的 {repo} 缺少 {name} 的一个文件（{detail}）"},
    "download.login_first": {"en": " If it is private or gated, log in first (`hf auth login` or HF_TOKEN).",
                             "zh-CN": "如果它是私有或受限仓库，请先登录（`hf auth login` 或 HF_TOKEN）。"},
    "download.no_repo": {
        "en": "{repo} was not found on {endpoint} (HTTP {status}).{login} Check the endpoint: the official hub is "
              "{hub}, the mirror {mirror}.",
        "zh-CN": "在 {endpoint} 上找不到 {repo}（HTTP {status}）。{login}请检查下载地址：官方地址是 {hub}，"
                 "镜像是 {mirror}。"},
    "download.answered_404": {"en": "{endpoint} answered 404 for {repo}: {detail}",
                              "zh-CN": "{endpoint} 对 {repo} 返回 404：{detail}"},
    "download.gated_403": {
        "en": "the hub answered 403: a token was sent, but its account has not been granted access yet (accept the "
              "licence with the account that owns the token; approval can take a moment), or the token lacks read "
              "permission",
        "zh-CN": "Hugging Face 返回 403：已发送令牌，但该账号还没有获得访问权限（请用令牌所属的账号接受许可协议；"
                 "审批可能需要一点时间），或者令牌没有读取权限"},
    "download.gated_401": {"en": "the hub answered 401: no token was sent",
                           "zh-CN": "Hugging Face 返回 401：没有发送令牌"},
    "download.gated_mirror": {
        "en": "\n  You are using {endpoint}: a mirror passes a gated repository through only with a token of an "
              "account "
              "that accepted the licence on {hub}.",
        "zh-CN": "\n  你正在使用 {endpoint}：镜像只有在带上已在 {hub} 接受许可协议的账号的令牌时，才会转发受限仓库。"},
    "download.gated": {
        "en": "{repo} is gated ({why}).\n"
              "  1. Open {url} , log in, read the licence ({licence}) and accept it ('agree to share your contact "
              "information').\n"
              "  2. Create a read token at {hub}/settings/tokens .\n"
              "  3. Give it to svd-lab without writing it into a notebook or a file you share: run `hf auth login` in "
              "a "
              "terminal, or `export HF_TOKEN=...` in the shell that starts svd-lab / Jupyter.{mirror}",
        "zh-CN": "{repo} 是受限仓库（{why}）。\n"
                 "  1. 打开 {url} ，登录，阅读许可协议（{licence}）并接受（“agree to share your contact information”）"
                 "。\n"
                 "  2. 在 {hub}/settings/tokens 创建一个读取令牌。\n"
                 "  3. 把它交给 svd-lab，但不要写进 notebook 或你会分享的文件：在终端运行 `hf auth login`，"
                 "或在启动 svd-lab / Jupyter 的 shell 中 `export HF_TOKEN=...`。{mirror}"},
}
