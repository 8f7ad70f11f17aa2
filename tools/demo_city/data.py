"""The demo city's static data: what is fixed before the first random draw.

The targets the city is calibrated to, its places (districts with their
streets and townships, the city bureaus, the stems community and village
names are made of), the request categories with their seasonal weights and
what citizens say, the daily rhythm of calls, the mobile prefixes, and what
a callback attempt can end in. Changing anything here changes every seed's city.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.vocabulary import AttemptOutcome, RequestType

# The seed city's figures the whole demo city is calibrated to.
TARGET_RESPONSE = 0.957
TARGET_RESOLUTION = 0.837
TARGET_SATISFACTION = 0.972
TARGET_COMPLETION = 0.972
TARGET_SUCCESS = 0.72  # robot: completed surveys / attempts placed
# As published (robot: 7,420 calls, 71.83%); the demo prints its figures beside these.
SEED_CITY_PUBLISHED = {
    "completion 办结率": TARGET_COMPLETION,
    "response 响应率": TARGET_RESPONSE,
    "resolution 解决率": TARGET_RESOLUTION,
    "satisfaction 满意率": TARGET_SATISFACTION,
    "robot success 回访成功率": 0.7183,
}

# (name, share of the territorial tickets, streets/townships: real names, a few invented)
DISTRICTS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("东胜区", 0.24, ("交通街道", "公园街道", "林荫街道", "建设街道", "富兴街道", "天骄街道",
                     "诃额伦街道", "巴音门克街道", "幸福街道", "纺织街道", "泊江海子镇", "罕台镇")),
    ("康巴什区", 0.09, ("哈巴格希街道", "青春山街道", "滨河街道", "康新街道", "康和街道",
                       "康宁街道", "康泰街道", "康居街道")),
    ("达拉特旗", 0.13, ("树林召镇", "王爱召镇", "白泥井镇", "吉格斯太镇", "昭君镇", "风水梁镇",
                       "恩格贝镇", "中和西镇", "展旦召苏木", "工业街道", "平原街道")),
    ("准格尔旗", 0.15, ("薛家湾镇", "沙圪堵镇", "大路镇", "龙口镇", "纳日松镇", "暖水乡",
                       "十二连城乡", "准格尔召镇", "布尔陶亥苏木", "蓝天街道", "迎泽街道")),
    ("伊金霍洛旗", 0.13, ("阿勒腾席热镇", "乌兰木伦镇", "札萨克镇", "伊金霍洛镇", "纳林陶亥镇",
                         "红庆河镇", "苏布尔嘎镇", "伊化街道", "天骄路街道")),
    ("鄂托克旗", 0.06, ("乌兰镇", "棋盘井镇", "蒙西镇", "木凯淖尔镇", "阿尔巴斯苏木",
                       "苏米图苏木", "包日塔拉街道", "乌兰街道")),
    ("鄂托克前旗", 0.04, ("敖勒召其镇", "城川镇", "上海庙镇", "昂素镇", "二道川苏木",
                         "三段地苏木", "毛盖图苏木", "敖镇街道")),
    ("杭锦旗", 0.06, ("锡尼镇", "巴拉贡镇", "吉日嘎朗图镇", "独贵塔拉镇", "伊和乌素苏木",
                     "呼和木独镇", "塔拉沟镇", "锡尼街道")),
    ("乌审旗", 0.10, ("嘎鲁图镇", "乌审召镇", "图克镇", "无定河镇", "乌兰陶勒盖镇",
                     "苏力德苏木", "河南乡", "嘎鲁图街道", "萨拉乌苏街道")),
)  # fmt: skip

# (key used by the categories, the unit's name); codes B01.. in this order
BUREAUS: tuple[tuple[str, str], ...] = (
    ("住建局", "市住房和城乡建设局"),
    ("人社局", "市人力资源和社会保障局"),
    ("市场监管局", "市市场监督管理局"),
    ("城管局", "市城市管理综合执法局"),
    ("交通运输局", "市交通运输局"),
    ("教育局", "市教育局"),
    ("卫健委", "市卫生健康委员会"),
    ("医保局", "市医疗保障局"),
    ("自然资源局", "市自然资源局"),
    ("生态环境局", "市生态环境局"),
    ("水务局", "市水务局"),
    ("供热公司", "市热电供热有限责任公司"),
    ("供电公司", "国网鄂尔多斯供电公司"),
    ("燃气公司", "市城市燃气有限公司"),
    ("公安局", "市公安局交通管理支队"),
    ("民政局", "市民政局"),
    ("农牧局", "市农牧局"),
    ("林草局", "市林业和草原局"),
    ("商务局", "市商务局"),
    ("文旅局", "市文化和旅游局"),
    ("应急管理局", "市应急管理局"),
    ("公积金中心", "市住房公积金管理中心"),
    ("税务局", "国家税务总局鄂尔多斯市税务局"),
    ("政务服务局", "市行政审批和政务服务局"),
    ("退役军人局", "市退役军人事务局"),
)

COMMUNITY_STEMS = (
    "东兴", "富民", "团结", "和平", "民生", "幸福", "阳光", "振兴", "新华", "文明", "安居", "祥和",
    "兴盛", "永安", "朝阳", "锦绣", "康乐", "紫荆", "金辉", "园丁", "铁西", "滨河", "书香", "吉祥",
    "明珠", "怡景", "春晖", "鑫海", "学府", "馨园", "双拥", "育才", "北园", "南苑", "西城", "东苑",
)  # fmt: skip
GACHA_HEADS = ("巴音", "乌兰", "查干", "宝日", "呼和", "阿拉腾", "伊克", "赛音", "沙日", "敖伦")
GACHA_TAILS = ("希里", "布拉格", "陶勒盖", "敖包", "淖尔", "乌素", "哈达", "温都尔", "套海", "塔拉")
VILLAGE_HEADS = ("王", "李", "张", "刘", "白", "杨", "高", "郝", "贺", "乔", "苏", "奇", "武", "韩")
VILLAGE_TAILS = ("渠", "塔", "圪旦", "梁", "坡", "湾", "沟", "圪堵", "营子", "堡")

REQUEST_TYPES = tuple(RequestType)  # consultation, help, complaint, report, suggestion
TYPE_DIFFICULTY = (0.6, 0.0, -0.4, -0.3, 0.2)  # a consultation is easiest to resolve
DEFAULT_TYPES = (0.46, 0.24, 0.19, 0.05, 0.06)


@dataclass(frozen=True)
class Category:
    """A request category: its volume, season, who handles it and what citizens say."""

    name: str
    share: float  # of all tickets over a year
    months: tuple[float, ...]  # volume multiplier in Jan..Dec (interpolated between months)
    bureau_share: float  # handled by a city bureau rather than the district/street/community
    bureaus: tuple[tuple[str, float], ...]
    difficulty: float  # shifts the log-odds of "resolved"
    emergency: float
    complex: float
    asks: tuple[str, ...]
    replies: tuple[str, ...]
    types: tuple[float, ...] = DEFAULT_TYPES


# Positional fields, in order: name, share, months; bureau share, bureaus, difficulty,
# emergency and complex shares; what citizens ask; replies; request-type shares if not default.
CATEGORIES: tuple[Category, ...] = (
    Category(
        "城乡建设", 0.11, (0.7, 0.6, 0.8, 1.0, 1.2, 1.35, 1.4, 1.35, 1.2, 1.0, 0.8, 0.7),
        0.45, (("住建局", 0.6), ("自然资源局", 0.25), ("生态环境局", 0.15)), -0.3, 0.03, 0.15,
        ("{place}内道路破损严重，雨天积水，希望尽快维修。",
         "反映{place}附近工地夜间施工，噪音扰民。",
         "{place}老旧小区改造进度缓慢，楼道墙皮脱落，询问何时完工。"),
        ("已协调施工单位整改，夜间22时后停止高噪音作业，已电话告知市民。",
         "已安排维修队伍对破损路面进行修补，并告知市民完工时间。"),
    ),
    Category(
        "公共卫生", 0.07, (1.4, 1.2, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.1, 1.4),
        0.7, (("卫健委", 0.75), ("医保局", 0.25)), 0.3, 0.10, 0.05,
        ("反映{place}某诊所收费不规范，药价明显偏高。",
         "咨询流感疫苗接种地点和预约方式。",
         "{place}周边垃圾清运不及时，蚊蝇滋生。"),
        ("卫生监督人员已现场检查并责令整改，已回复市民。",
         "已告知市民就近社区卫生服务中心的接种时间及预约方式。"),
        (0.5, 0.2, 0.18, 0.07, 0.05),
    ),
    Category(
        "社会保障", 0.12, (1.3, 1.0, 1.0, 0.9, 0.9, 1.0, 1.2, 1.0, 0.9, 0.9, 1.0, 1.1),
        0.6, (("人社局", 0.55), ("医保局", 0.25), ("民政局", 0.15), ("退役军人局", 0.05)), 0.5,
        0.02, 0.05,
        ("咨询灵活就业人员养老保险缴费标准及办理渠道。",
         "反映养老金本月未按时到账，请帮忙查询。",
         "咨询{place}低保申请条件和所需材料。"),
        ("已向市民解释缴费政策及线上办理渠道，市民表示清楚。",
         "经查询为银行代发延迟，款项已到账，已告知市民。"),
        (0.7, 0.18, 0.07, 0.02, 0.03),
    ),
    Category(
        "劳动纠纷", 0.09, (2.0, 1.6, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.1, 1.7),
        0.55, (("人社局", 1.0),), -0.6, 0.04, 0.25,
        ("在{place}一工地务工，被拖欠工资{n}千元，多次讨要未果。",
         "公司未签劳动合同且拖欠两个月工资，要求维权。",
         "反映年底项目结算后农民工工资迟迟不发放。"),
        ("经劳动监察大队协调，用工单位已承诺春节前结清欠薪，已告知市民。",
         "已告知市民劳动仲裁的流程和材料，并约谈企业协商解决。"),
        (0.18, 0.45, 0.32, 0.04, 0.01),
    ),
    Category(
        "消费维权", 0.10, (1.0, 1.1, 1.5, 1.0, 0.9, 1.0, 0.9, 0.9, 0.9, 1.1, 1.3, 1.1),
        0.75, (("市场监管局", 0.8), ("商务局", 0.1), ("文旅局", 0.05), ("税务局", 0.05)), -0.1,
        0.02, 0.06,
        ("在{place}某商场购买的家电出现质量问题，商家拒绝退换。",
         "反映某健身房闭店，预付卡余额{n}千元无法退还。",
         "网购商品与描述不符，商家不予处理。"),
        ("经市场监管所调解，商家同意退货退款，市民表示认可。",
         "已立案调查，依法督促经营者退还预付款。"),
        (0.22, 0.08, 0.55, 0.12, 0.03),
    ),
    Category(
        "水电气暖", 0.14, (2.4, 2.1, 1.7, 1.0, 0.6, 0.5, 0.6, 0.6, 0.6, 1.3, 2.6, 2.8),
        0.7, (("供热公司", 0.55), ("水务局", 0.15), ("供电公司", 0.15), ("燃气公司", 0.15)), 0.0,
        0.15, 0.04,
        ("{place}小区暖气不热，室温只有{n}度，家中有老人孩子。",
         "{place}突然停水，没有接到任何通知，询问何时恢复。",
         "家中燃气表显示异常，担心安全隐患。"),
        ("供热公司已上门排查，清洗过滤器并排气后室温恢复至20度以上。",
         "经核实为管网抢修，已于当日恢复供水，已回复市民。"),
        (0.25, 0.45, 0.25, 0.02, 0.03),
    ),
    Category(
        "三农", 0.04, (0.6, 0.6, 1.0, 1.5, 1.6, 1.2, 1.0, 0.9, 1.3, 1.3, 0.8, 0.6),
        0.35, (("农牧局", 0.7), ("林草局", 0.3)), -0.2, 0.03, 0.15,
        ("{place}耕地补贴至今未发放，请帮忙查询。",
         "反映{place}草场被邻村牲畜越界放牧。",
         "咨询今年玉米种植补贴标准。"),
        ("经核实，补贴已随第二批次发放，已告知市民查询方式。",
         "属地政府已组织双方调解，明确放牧界线。"),
    ),
    Category(
        "房地产", 0.08, (0.9, 0.8, 1.0, 1.0, 1.0, 1.1, 1.1, 1.1, 1.0, 1.0, 1.0, 0.9),
        0.55, (("住建局", 0.55), ("公积金中心", 0.2), ("自然资源局", 0.2), ("政务服务局", 0.05)),
        -0.5, 0.02, 0.25,
        ("购买的{place}商品房逾期{n}个月未交房，开发商无明确答复。",
         "房屋交付已满两年仍未办理不动产权证。",
         "物业服务差，电梯经常故障，却要上调物业费。"),
        ("住建部门已约谈开发商，督促制定交房计划，已告知市民。",
         "已协调开发企业补齐材料，不动产登记窗口开辟绿色通道办理。"),
    ),
    Category(
        "城市管理", 0.12, (0.7, 0.7, 0.85, 1.0, 1.2, 1.35, 1.45, 1.4, 1.2, 1.0, 0.8, 0.7),
        0.35, (("城管局", 0.75), ("生态环境局", 0.2), ("应急管理局", 0.05)), -0.1, 0.06, 0.06,
        ("{place}路边占道经营，影响通行。",
         "反映{place}附近烧烤油烟扰民。",
         "{place}路灯损坏多日不亮，夜间出行不便。"),
        ("执法队员已到现场劝离占道商贩，并加强巡查。",
         "已安排维修人员更换路灯，当晚恢复照明。"),
        (0.15, 0.2, 0.4, 0.15, 0.1),
    ),
    Category(
        "交通管理", 0.07, (1.0, 1.2, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.0, 1.2, 0.9, 0.9),
        0.75, (("交通运输局", 0.55), ("公安局", 0.45)), 0.1, 0.08, 0.05,
        ("{place}路口信号灯配时不合理，早高峰拥堵严重。",
         "反映某公交线路发车间隔过长，等车时间太久。",
         "出租车拒载、绕路，要求处理。"),
        ("交警部门已调整该路口信号配时，已回复市民。",
         "已责成公交公司加密高峰时段发车班次，已回复市民。"),
    ),
    Category(
        "教育", 0.06, (0.8, 1.2, 1.1, 0.8, 0.8, 1.0, 0.9, 2.0, 2.2, 0.9, 0.7, 0.7),
        0.8, (("教育局", 1.0),), 0.3, 0.02, 0.06,
        ("咨询{place}片区小学一年级入学划片及报名材料。",
         "反映某校外培训机构退费难，{n}千元学费无法退回。",
         "孩子学校食堂饭菜质量差，希望加强监管。"),
        ("已向市民说明学区划分及报名时间、所需材料。",
         "教育局已约谈培训机构，督促按合同办理退费。"),
    ),
)  # fmt: skip

# Spring Festival (wage arrears peak in the weeks before it); other years: about Feb 1.
SPRING_FESTIVAL = {
    2020: date(2020, 1, 25), 2021: date(2021, 2, 12), 2022: date(2022, 2, 1),
    2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29),
    2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
    2029: date(2029, 2, 13), 2030: date(2030, 2, 3),
}  # fmt: skip

# Relative call volume by local hour: quiet nights, busy 8-18 with a dip at lunch.
HOUR_WEIGHTS = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 1.5, 4.0, 6.5, 7.0, 6.5,
    4.5, 4.0, 6.0, 6.5, 6.0, 5.0, 3.5, 2.5, 2.0, 1.5, 1.0, 0.6,
)  # fmt: skip
MOBILE_PREFIXES = (
    "139", "138", "137", "136", "135", "134", "150", "151", "152", "157", "158", "159", "182",
    "183", "187", "188", "130", "131", "132", "155", "156", "185", "186", "133", "153", "180",
    "181", "189", "177", "173", "199", "198", "191", "166",
)  # fmt: skip

# A survey attempt's outcome (per attempt, so completed / placed lands on TARGET_SUCCESS)
OUTCOMES = (
    (AttemptOutcome.COMPLETED, TARGET_SUCCESS),
    (AttemptOutcome.NO_ANSWER, 0.16),
    (AttemptOutcome.PARTIAL, 0.045),
    (AttemptOutcome.BUSY, 0.042),
    (AttemptOutcome.FAILED, 0.025),
    (AttemptOutcome.OPTED_OUT, 0.008),
)
HANGUP_CAUSE = {
    AttemptOutcome.COMPLETED: "NORMAL_CLEARING",
    AttemptOutcome.PARTIAL: "NORMAL_CLEARING",
    AttemptOutcome.OPTED_OUT: "NORMAL_CLEARING",
    AttemptOutcome.NO_ANSWER: "NO_ANSWER",
    AttemptOutcome.BUSY: "USER_BUSY",
    AttemptOutcome.FAILED: "CONGESTION",
}
CALL_SECONDS = {  # how long each kind of attempt lasts (no answer: the ring timeout)
    AttemptOutcome.COMPLETED: (55, 150),
    AttemptOutcome.PARTIAL: (35, 70),
    AttemptOutcome.OPTED_OUT: (10, 30),
    AttemptOutcome.BUSY: (3, 8),
    AttemptOutcome.FAILED: (1, 3),
}
