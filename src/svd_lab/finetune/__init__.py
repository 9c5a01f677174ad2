"""Fine-tuning SVD on your own videos: data (:mod:`.data`), LoRA (:mod:`.lora`), the trainer (:mod:`.train`) and the
measure of a learned motion (:mod:`.measure`)."""
