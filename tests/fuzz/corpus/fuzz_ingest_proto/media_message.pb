
»ë¡ÿ¼12webjs-1@Rd
m-30812 3456 7890PX»ë¡ÿ¼1`j0

image/jpeghttps://example.invalid/x"foto0Ò	pzm-1šimageÀ