"""Inside-the-model reducers: ToMe, TempMe (ImgMe / ClipMe), SViTT node pruning, and their schedules."""
