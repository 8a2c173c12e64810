"""The ecosystem's protocols on top of the queue: AUTOMATIC1111's web API (`/sdapi/v1`) and OpenAI's
Images API (`/openai/v1`). Each request is a `generate_image` job enqueued through `intake.submit`
(rights, tier, quotas) and awaited on its row; nothing here generates or imports torch.

`common` holds what both share (the caller, waiting on a job, reading its PNGs, translating errors),
`a1111_models` and `openai_models` the request and response models (AUTOMATIC1111's
`modules/api/models.py` approach: one place for the shapes, thin routes).
"""
