
wa.inbound.rawÒ	"77:+6281234567890*	
garbage:decode_errorB2field value: not a blazz.v1.InboundEvent (9 bytes)JingestPXôÓ•ÿ¼1`ôÓ•ÿ¼1